use super::source::{Lines, Position, check_event_size, json_len_exceeds};

#[test]
fn position_round_trip() {
    let p = Position { offset: 1234, line: 17 };
    assert_eq!(Position::parse(&p.render()), Some(p));
    assert_eq!(Position::parse("garbage"), None);
}

/// Every line of `data` read through a buffer of `cap` bytes, in `parts` appends (a file being written).
async fn read_lines(data: &[u8], max: usize, cap: usize, parts: usize) -> (Vec<(u64, Option<String>, String)>, u64) {
    let mut lines = Lines::new(max);
    let mut out = Vec::new();
    let step = data.len().div_ceil(parts.max(1)).max(1);
    let mut fed = 0;
    let mut pending_max = 0;
    while fed < data.len() {
        let end = (fed + step).min(data.len());
        let mut r = tokio::io::BufReader::with_capacity(cap, &data[fed..end]);
        while let Some(l) = lines.next_line(&mut r).await.unwrap() {
            out.push((
                l.len,
                l.text.map(|t| String::from_utf8_lossy(t).into_owned()),
                String::from_utf8_lossy(&l.excerpt).into_owned(),
            ));
        }
        pending_max = pending_max.max(lines.held() as u64);
        fed = end;
    }
    (out, pending_max)
}

#[tokio::test]
async fn lines_are_capped_skipped_and_never_reread() {
    let long = "x".repeat(5000);
    let data = format!("short\n{long}\nexactly10!\n\nlast");
    for (cap, parts) in [(7, 1), (64, 3), (1 << 16, 1), (3, 11)] {
        let (lines, pending) = read_lines(data.as_bytes(), 10, cap, parts).await;
        assert_eq!(lines.len(), 4, "cap {cap} parts {parts}: {lines:?}");
        assert_eq!(lines[0], (6, Some("short".into()), String::new()));
        // The overlong line: its length counted, no text, its start as the excerpt.
        assert_eq!(lines[1].0, 5001);
        assert_eq!(lines[1].1, None);
        assert!(
            lines[1].2.starts_with("xxxxxxx") && lines[1].2.len() <= 1024,
            "{:?}",
            lines[1].2.len()
        );
        // A line of exactly the cap is kept.
        assert_eq!(lines[2], (11, Some("exactly10!".into()), String::new()));
        assert_eq!(lines[3], (1, Some(String::new()), String::new()));
        // Never much more than the cap is held, whatever the line lengths.
        assert!(pending <= 64, "{pending}");
    }
    // The partial line completes later: read once, from where it stopped.
    let mut lines = Lines::new(100);
    let mut r = tokio::io::BufReader::new(&b"{\"a\":"[..]);
    assert!(lines.next_line(&mut r).await.unwrap().is_none());
    assert_eq!(lines.pending(), 5);
    let mut r = tokio::io::BufReader::new(&b"1}\n"[..]);
    let l = lines.next_line(&mut r).await.unwrap().unwrap();
    assert_eq!((l.len, l.text), (8, Some(&b"{\"a\":1}"[..])));
    assert_eq!(lines.pending(), 8);
    let mut r = tokio::io::BufReader::new(&b""[..]);
    assert!(lines.next_line(&mut r).await.unwrap().is_none());
    assert_eq!(lines.pending(), 0, "a returned line is not held");
}

#[test]
fn event_size_is_measured_as_compact_json() {
    let v = serde_json::json!({"k": "vvvv"});
    let n = serde_json::to_vec(&v).unwrap().len();
    assert!(!json_len_exceeds(&v, n));
    assert!(json_len_exceeds(&v, n - 1));
    let ev = crate::json_event::parse_item(serde_json::json!({"kind": "a", "data": "x".repeat(100)}), None).unwrap();
    let err = check_event_size(ev.clone(), 50).unwrap_err();
    assert!(err.contains("max_event_bytes") && err.contains("50"), "{err}");
    assert!(check_event_size(ev, 102).is_ok());
}
