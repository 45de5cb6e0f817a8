//! The executive report (`claimwatch report`) rendered by a real browser: a small generated
//! population is replayed, the report written, and Debian's `chromium` (installed by
//! `tests/support/install-chromium.sh`) renders it headless to a PNG, which must decode and not
//! be blank, and dumps its DOM, which must hold the expected headings and inline charts.
//! Without chromium (and outside CI) the browser part is skipped with a message; under CI it
//! fails.
//!
//! The PNG and the HTML are kept in `$CARGO_TARGET_TMPDIR/report/` for a look.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_claimwatch"))
}

fn run_ok(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{cmd:?} failed:\n{text}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `chromium` on PATH, installing Debian's package when it is missing.
fn chromium() -> Option<PathBuf> {
    let found = || {
        Command::new("chromium")
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if found() {
        return Some(PathBuf::from("chromium"));
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let started = Instant::now();
    let ok = Command::new("bash")
        .arg(root.join("tests/support/install-chromium.sh"))
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    eprintln!(
        "install-chromium.sh: {} in {:.0} s",
        if ok { "installed" } else { "failed" },
        started.elapsed().as_secs_f64()
    );
    (ok && found()).then(|| PathBuf::from("chromium"))
}

/// Runs headless chromium with `args` on `url`, killed (by its pid) after two minutes.
fn headless(chromium: &Path, profile: &Path, args: &[String], url: &str) -> Vec<u8> {
    let mut child = Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .arg(url)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("starting chromium");
    let mut stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        stdout.read_to_end(&mut buf).unwrap();
        buf
    });
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "chromium {args:?} exited with {status}");
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("chromium {args:?} did not finish in 120 s");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    reader.join().unwrap()
}

#[test]
fn report_renders_in_headless_chromium() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("in");
    let replayed = tmp.path().join("out");
    run_ok(
        bin()
            .args(["generate", "--members", "600", "--seed", "7", "--out"])
            .arg(&input),
    );
    run_ok(
        bin()
            .arg("replay")
            .arg("--input")
            .arg(&input)
            .arg("--out")
            .arg(&replayed),
    );
    let keep = Path::new(env!("CARGO_TARGET_TMPDIR")).join("report");
    std::fs::create_dir_all(&keep).unwrap();
    let html_path = keep.join("report.html");
    let said = run_ok(
        bin()
            .arg("report")
            .arg("--input")
            .arg(&replayed)
            .arg("--out")
            .arg(&html_path),
    );
    assert!(said.contains("written to"), "{said}");
    let html = std::fs::read_to_string(&html_path).unwrap();
    assert!(html.contains("<h2>Key figures</h2>"));
    // The header names the data period; sections covering another span say theirs.
    assert!(html.contains("<strong>Data period "), "header period");
    assert!(html.matches("<p class=\"period\">").count() >= 5);
    assert!(!html.contains("<script"), "no JavaScript");
    assert!(
        !html.contains("src=\"http") && !html.contains("href=\"http"),
        "no external resource"
    );

    // A directory that is not a replay output is refused with a clear error.
    let out = bin()
        .arg("report")
        .arg("--input")
        .arg(tmp.path())
        .arg("--out")
        .arg(tmp.path().join("x.html"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no claimwatch output files"));

    let Some(chromium) = chromium() else {
        if std::env::var_os("CI").is_some() {
            panic!("chromium is required under CI (tests/support/install-chromium.sh failed)");
        }
        eprintln!("SKIPPED: chromium is not available");
        return;
    };
    let url = format!("file://{}", html_path.display());
    let png_path = keep.join("report.png");
    let _ = std::fs::remove_file(&png_path);
    headless(
        &chromium,
        &tmp.path().join("profile-shot"),
        &[
            format!("--screenshot={}", png_path.display()),
            "--window-size=1280,2400".into(),
        ],
        &url,
    );
    eprintln!("screenshot: {}", png_path.display());
    let decoder = png::Decoder::new(std::io::BufReader::new(
        std::fs::File::open(&png_path).unwrap(),
    ));
    let mut reader = decoder.read_info().expect("a PNG");
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).expect("PNG decodes");
    assert_eq!((info.width, info.height), (1280, 2400));
    let channels = info.color_type.samples();
    assert!(channels >= 3, "colour PNG, got {:?}", info.color_type);
    let pixels = buf[..info.buffer_size()].chunks_exact(channels);
    let total = (info.width * info.height) as usize;
    let mut colours = std::collections::HashSet::new();
    let mut non_white = 0usize;
    let mut blue = 0usize;
    for p in pixels {
        colours.insert((p[0], p[1], p[2]));
        non_white += usize::from(p[0] < 245 || p[1] < 245 || p[2] < 245);
        // The charts' and headings' blue (31,119,180) and the tile text (31,78,121).
        blue += usize::from(p[2] > 110 && p[0] < 80 && p[1] < 140);
    }
    let share = non_white as f64 / total as f64;
    eprintln!(
        "{} distinct colours, {:.1} % non-white, {} blue pixels",
        colours.len(),
        share * 100.0,
        blue
    );
    assert!(colours.len() >= 64, "too few colours: {}", colours.len());
    assert!(
        share > 0.05,
        "page looks blank: {:.2} % non-white",
        share * 100.0
    );
    assert!(
        blue > 2_000,
        "no chart bars or tiles drawn ({blue} blue pixels)"
    );

    let dom = String::from_utf8(headless(
        &chromium,
        &tmp.path().join("profile-dom"),
        &["--dump-dom".into()],
        &url,
    ))
    .unwrap();
    for h in [
        "Key figures",
        "Payer denial benchmarks",
        "Risk tier distribution",
        "Readmissions by HRRP cohort and diagnosis group",
        "Claim lifecycle status mix and A/R aging",
        "Readmission cost and preventability",
        "Intervention net savings and ROI",
        "Provider and department performance",
        "High-cost members",
        "Care gaps and immunization",
        "Cash forecast vs actual",
        "Utilization forecast vs actual",
    ] {
        assert!(
            dom.contains(&format!("<h2>{h}</h2>")),
            "DOM lacks heading {h}"
        );
    }
    assert!(dom.matches("<svg").count() >= 6, "inline charts in the DOM");
    assert!(dom.contains("class=\"tile\""));
}
