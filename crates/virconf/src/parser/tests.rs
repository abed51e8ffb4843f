use super::*;

fn parse(text: &str) -> Result<Conf, ConfError> {
    Conf::parse_str(text, "/tmp/x.conf")
}

fn syntax(text: &str) -> (u32, SyntaxError) {
    match parse(text) {
        Err(ConfError::Syntax { line, kind, .. }) => (line, kind),
        other => panic!("expected a syntax error for {text:?}, got {other:?}"),
    }
}

fn one(text: &str) -> Value {
    parse(text).unwrap().get("a").unwrap().clone()
}

#[test]
fn double_single_and_triple_quoted_strings_parse() {
    assert_eq!(one("a = \"x y\""), Value::String("x y".into()));
    assert_eq!(one("a = 'it\"s'"), Value::String("it\"s".into()));
    assert_eq!(
        one("a = \"\"\"l1\nl2\"\"\""),
        Value::String("l1\nl2".into())
    );
    assert_eq!(one("a = \"\""), Value::String(String::new()));
}

#[test]
fn triple_quotes_count_lines_for_later_errors() {
    assert_eq!(
        syntax("a = \"\"\"1\n2\n3\"\"\"\nb = \n"),
        (4, SyntaxError::ExpectingValue)
    );
}

#[test]
fn six_quotes_at_end_of_file_are_not_a_triple_quoted_string() {
    // virconf.c wants seven bytes left before it treats `"""` as an opener.
    assert_eq!(
        syntax("a = \"\"\"\"\"\""),
        (1, SyntaxError::ExpectingSeparator)
    );
    assert_eq!(one("a = \"\"\"\"\"\"\n"), Value::String(String::new()));
}

#[test]
fn unsigned_and_signed_numbers_keep_libvirt_types() {
    assert_eq!(one("a = 42"), Value::ULLong(42));
    assert_eq!(one("a = +42"), Value::ULLong(42));
    assert_eq!(one("a = -42"), Value::LLong(-42));
    assert_eq!(one("a = -0"), Value::LLong(0));
    assert_eq!(one("a = 18446744073709551615"), Value::ULLong(u64::MAX));
    // Wraps like the C accumulation.
    assert_eq!(one("a = 18446744073709551616"), Value::ULLong(0));
}

#[test]
fn lists_span_lines_and_allow_a_trailing_comma() {
    let v = one("a = [\n  \"x\",\n  'y',\n]\n");
    assert_eq!(
        v,
        Value::List(vec![Value::String("x".into()), Value::String("y".into())])
    );
    assert_eq!(one("a = []"), Value::List(vec![]));
    assert_eq!(one("a = [ \n ]"), Value::List(vec![]));
    assert_eq!(
        one("a = [[1], [], -2]"),
        Value::List(vec![
            Value::List(vec![Value::ULLong(1)]),
            Value::List(vec![]),
            Value::LLong(-2)
        ])
    );
}

#[test]
fn comments_blank_lines_and_semicolons_separate_statements() {
    let c = parse("# top\n\n  a = 1 # one\n\tb=2;c = 'x' ; \n#end").unwrap();
    let names: Vec<_> = c.entries().iter().map(|e| e.name.as_str()).collect();
    assert_eq!(names, ["a", "b", "c"]);
    assert_eq!(c.entries()[0].comment.as_deref(), Some(" one"));
    assert!(parse("").unwrap().entries().is_empty());
    assert!(parse("a = 1;").is_ok());
    assert!(parse("a = 1\r\nb = 2\r\n").is_ok());
}

#[test]
fn names_take_letters_digits_and_underscores() {
    assert!(parse("a_B9 = 1").unwrap().get("a_B9").is_some());
    assert_eq!(syntax("_a = 1"), (1, SyntaxError::ExpectingName));
    assert_eq!(syntax("9a = 1"), (1, SyntaxError::ExpectingName));
    assert_eq!(syntax("a.b = 1"), (1, SyntaxError::ExpectingAssignment));
}

#[test]
fn whitespace_only_file_expects_a_name_like_libvirt() {
    assert_eq!(syntax("\n"), (2, SyntaxError::ExpectingName));
    assert_eq!(syntax(" "), (1, SyntaxError::ExpectingName));
}

#[test]
fn syntax_errors_carry_libvirt_text_and_line() {
    let cases: &[(&str, u32, SyntaxError)] = &[
        ("x = 1\nfoo bar\n", 2, SyntaxError::ExpectingAssignment),
        ("a = \n", 1, SyntaxError::ExpectingValue),
        ("a =", 1, SyntaxError::ExpectingValue),
        ("a = abc", 1, SyntaxError::ExpectingValue),
        ("a = -\n", 1, SyntaxError::UnterminatedNumber),
        ("a = +", 1, SyntaxError::UnterminatedNumber),
        ("a = \"abc\n", 1, SyntaxError::UnterminatedString),
        ("a = 'abc", 1, SyntaxError::UnterminatedString),
        ("a = \"\"\"abcdefg", 1, SyntaxError::UnterminatedString),
        (
            "a = [ \"x\" \"y\" ]\n",
            1,
            SyntaxError::ExpectingListSeparator,
        ),
        (
            "a = [ \"x\" # c\n ]\n",
            1,
            SyntaxError::ExpectingListSeparator,
        ),
        ("a = [ \"x\", \n", 2, SyntaxError::ExpectingValue),
        ("a = [ \"x\" \n", 2, SyntaxError::ListNotClosed),
        ("a = [", 1, SyntaxError::ListNotClosed),
        ("a = 1 b = 2\n", 1, SyntaxError::ExpectingSeparator),
        ("a = 1x", 1, SyntaxError::ExpectingSeparator),
    ];
    for (text, line, kind) in cases {
        assert_eq!(syntax(text), (*line, *kind), "input {text:?}");
    }
    let e = parse("\n\na = \n").unwrap_err();
    assert_eq!(
        e.to_string(),
        "configuration file syntax error: /tmp/x.conf:3: expecting a value"
    );
    assert_eq!((e.code(), e.domain()), (33, 9));
}

#[test]
fn first_of_duplicate_keys_wins() {
    let c = parse("a = 1\na = 2\n").unwrap();
    assert_eq!(c.get_uint("a").unwrap(), Some(1));
    assert_eq!(c.entries().len(), 2);
}

#[test]
fn strings_stop_at_nul_like_g_strndup() {
    let c = Conf::parse(b"a = \"x\0y\"", "m").unwrap();
    assert_eq!(c.get_string("a").unwrap().as_deref(), Some("x"));
}

#[test]
fn getters_report_libvirt_type_errors() {
    let c = parse(
        "s = 'x'\nu = 5\nn = -5\nl = [ 'a', 1 ]\nbig = 4294967296\nhuge = 18446744073709551615\n",
    )
    .unwrap();
    let msg = |r: ConfError| r.to_string();
    assert_eq!(
        msg(c.get_string("u").unwrap_err()),
        "internal error: /tmp/x.conf: expected a string for 'u' parameter"
    );
    assert_eq!(
        msg(c.get_uint("n").unwrap_err()),
        "internal error: /tmp/x.conf: expected an unsigned integer for 'n' parameter"
    );
    assert_eq!(
        msg(c.get_uint("big").unwrap_err()),
        "internal error: /tmp/x.conf: value for 'big' parameter must be in range 0:4294967295"
    );
    assert_eq!(
        msg(c.get_int("big").unwrap_err()),
        "internal error: /tmp/x.conf: value for 'big' parameter must be in range -2147483648:2147483647"
    );
    assert_eq!(
        msg(c.get_int("s").unwrap_err()),
        "internal error: /tmp/x.conf: expected a signed integer for 's' parameter"
    );
    assert_eq!(
        msg(c.get_bool("s").unwrap_err()),
        "internal error: /tmp/x.conf: expected a bool for 's' parameter"
    );
    assert_eq!(
        msg(c.get_bool("n").unwrap_err()),
        "internal error: /tmp/x.conf: expected a bool for 'n' parameter"
    );
    assert_eq!(
        msg(c.get_bool("u").unwrap_err()),
        "internal error: /tmp/x.conf: value for 'u' parameter must be 0 or 1"
    );
    let e = c.get_string_list("l", false).unwrap_err();
    assert_eq!(
        msg(e.clone()),
        "configuration file syntax error: /tmp/x.conf: expected a string list for 'l' parameter"
    );
    assert_eq!(e.code(), 33);
    assert_eq!(
        msg(c.get_string_list("s", false).unwrap_err()),
        "internal error: /tmp/x.conf: expected a string list for 's' parameter"
    );
    assert_eq!(
        msg(c.get_string_list("u", true).unwrap_err()),
        "internal error: /tmp/x.conf: expected a string or string list for 'u' parameter"
    );
    assert_eq!(
        msg(c.get_llong("huge").unwrap_err()),
        "internal error: /tmp/x.conf: value for 'huge' parameter must be in range -9223372036854775808:9223372036854775807"
    );
    assert_eq!(
        msg(c.get_ullong("n").unwrap_err()),
        "internal error: /tmp/x.conf: expected an unsigned integer for 'n' parameter"
    );
}

#[test]
fn getters_return_values_and_none_when_absent() {
    let c = parse("s = 'x'\nu = 1\nn = -5\nl = [ 'a' ]\n").unwrap();
    assert_eq!(c.get_string("s").unwrap().as_deref(), Some("x"));
    assert_eq!(c.get_string("missing").unwrap(), None);
    assert_eq!(c.get_bool("u").unwrap(), Some(true));
    assert_eq!(c.get_int("n").unwrap(), Some(-5));
    assert_eq!(c.get_int("u").unwrap(), Some(1));
    assert_eq!(c.get_llong("n").unwrap(), Some(-5));
    assert_eq!(c.get_ssize_t("u").unwrap(), Some(1));
    assert_eq!(c.get_size_t("u").unwrap(), Some(1));
    assert_eq!(
        c.get_string_list("l", false).unwrap(),
        Some(vec!["a".to_string()])
    );
    assert_eq!(
        c.get_string_list("s", true).unwrap(),
        Some(vec!["x".to_string()])
    );
    assert_eq!(c.get("l").unwrap().type_name(), "list");
}

#[test]
fn int_getter_accepts_unsigned_that_wrapped_negative_like_libvirt() {
    // virConfGetValueInt range-checks the signed long long.
    let c = parse("a = +18446744073709551615").unwrap();
    assert_eq!(c.get_int("a").unwrap(), Some(-1));
}

#[test]
fn read_file_reports_open_failures_as_system_errors() {
    let e = Conf::read_file(Path::new("/nonexistent/virconf.conf")).unwrap_err();
    assert_eq!(
        e.to_string(),
        "Failed to open file '/nonexistent/virconf.conf': No such file or directory"
    );
    let dir = tempfile::tempdir().unwrap();
    let e = Conf::read_file(dir.path()).unwrap_err();
    assert_eq!(
        e.to_string(),
        format!(
            "Failed to read file '{}': Is a directory",
            dir.path().display()
        )
    );
}

#[test]
fn read_file_rejects_files_over_ten_mebibytes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.conf");
    std::fs::write(&path, vec![b'#'; MAX_CONFIG_FILE_SIZE as usize + 1]).unwrap();
    let e = Conf::read_file(&path).unwrap_err();
    assert_eq!(
        e.to_string(),
        format!(
            "Failed to read file '{}': Value too large for defined data type",
            path.display()
        )
    );
    std::fs::write(&path, b"a = 1\n").unwrap();
    let c = Conf::read_file(&path).unwrap();
    assert_eq!(c.filename(), path.to_str().unwrap());
}

/// xorshift64*, so the garbage is the same on every run.
fn rng(seed: &mut u64) -> u64 {
    *seed ^= *seed >> 12;
    *seed ^= *seed << 25;
    *seed ^= *seed >> 27;
    seed.wrapping_mul(0x2545_f491_4f6c_dd1d)
}

#[test]
fn parser_never_panics_on_garbage() {
    const ALPHABET: &[u8] = b"ab_1-+=\"'[],;# \t\n\r\0\xff";
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    for round in 0..20_000 {
        let len = (rng(&mut seed) % 64) as usize;
        let bytes: Vec<u8> = (0..len)
            .map(|_| {
                let r = rng(&mut seed);
                if round % 2 == 0 {
                    ALPHABET[(r % ALPHABET.len() as u64) as usize]
                } else {
                    r as u8
                }
            })
            .collect();
        if let Ok(c) = Conf::parse(&bytes, "fuzz") {
            for e in c.entries() {
                let _ = c.get_string(&e.name);
                let _ = c.get_string_list(&e.name, true);
                let _ = c.get_int(&e.name);
                let _ = c.get_uint(&e.name);
                let _ = c.get_bool(&e.name);
                let _ = c.get_llong(&e.name);
            }
        }
    }
}

#[test]
fn deeply_nested_lists_do_not_overflow_the_stack() {
    let depth = 1_000_000;
    let mut text = String::from("a = ");
    text.push_str(&"[".repeat(depth));
    text.push_str(&"]".repeat(depth));
    assert!(parse(&text).is_ok());
    let unclosed = format!("a = {}", "[".repeat(depth));
    assert_eq!(syntax(&unclosed), (1, SyntaxError::ListNotClosed));
}
