//! Large-input builder for benches and memory tests: repeats whole interchanges
//! of the given X12 files with fresh ISA13/IEA02 control numbers.

/// Repeats the interchanges of `samples` until at least `target_bytes` are produced.
pub fn repeat_interchanges(samples: &[&[u8]], target_bytes: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(target_bytes + 4096);
    let mut ctrl: u64 = 1;
    while out.len() < target_bytes {
        for s in samples {
            write_with_control(s, ctrl, &mut out);
            ctrl += 1;
        }
        if samples.is_empty() {
            break;
        }
    }
    out
}

fn write_with_control(sample: &[u8], ctrl: u64, out: &mut Vec<u8>) {
    let num = format!("{:09}", ctrl % 1_000_000_000);
    for seg in super::tokenizer::Tokenizer::new(sample) {
        let id = seg.id();
        let e = seg.sep.element as char;
        let raw = std::str::from_utf8(seg.raw).unwrap_or("");
        if id == b"ISA" {
            let mut parts: Vec<&str> = raw.split(e).collect();
            if parts.len() > 13 {
                parts[13] = &num;
            }
            out.extend(parts.join(&e.to_string()).as_bytes());
        } else if id == b"IEA" {
            out.extend(format!("IEA{e}{}{e}{num}", seg.el(1)).as_bytes());
        } else {
            out.extend(seg.raw);
        }
        out.push(seg.sep.segment);
        out.push(b'\n');
    }
}
