use super::source::Position;

#[test]
fn position_round_trip() {
    let p = Position { offset: 1234, line: 17 };
    assert_eq!(Position::parse(&p.render()), Some(p));
    assert_eq!(Position::parse("garbage"), None);
}
