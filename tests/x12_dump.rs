#[test]
#[ignore]
fn dump() {
    let f = std::env::var("X12_FILE").unwrap();
    let b = std::fs::read(&f).unwrap();
    let o = claimwatch::x12::parse(&b, &f);
    for e in &o.events {
        println!("{e:?}");
    }
    for e in &o.findings {
        println!("F {e:?}");
    }
    for e in &o.errors {
        println!("E {e}");
    }
    for e in &o.plb {
        println!("PLB {e:?}");
    }
}
