//! Splitting an inline request line into arguments, with the quoting rules of Redis's
//! `sdssplitargs` (the idea is Redis's; this is our own implementation).
//!
//! - Arguments are separated by whitespace.
//! - `"double quotes"` understand `\n \r \t \b \a \\ \"` and `\xHH`; any other escaped byte
//!   stands for itself.
//! - `'single quotes'` understand only `\'`.
//! - A closing quote must be followed by whitespace or the end of the line.
//! - As in C, a NUL byte ends the line: outside quotes it silently drops the rest, inside
//!   quotes it leaves them unbalanced.

use bytes::Bytes;

use crate::error::ProtocolError;

/// Whitespace as C's `isspace` sees it.
fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

fn hex_value(b: u8) -> Option<u8> {
    char::from(b)
        .to_digit(16)
        .and_then(|d| u8::try_from(d).ok())
}

/// Where the bytes of the argument being read go.
enum Quoting {
    /// No quote seen yet: the argument will be a slice of the line.
    Plain,
    /// Inside `"..."`: unescaped bytes (including any before the quote) collect here.
    Double(Vec<u8>),
    /// Inside `'...'`.
    Single(Vec<u8>),
}

/// Splits `line` (without its line terminator) into arguments. Unquoted arguments are slices
/// of `line`; quoted ones are unescaped into fresh buffers.
///
/// # Errors
///
/// [`ProtocolError::UnbalancedQuotes`] if a quote does not close, or closes in the middle of
/// a word.
pub(super) fn split_inline(line: &Bytes) -> Result<Vec<Bytes>, ProtocolError> {
    // C strings end at the first NUL; reading past the end yields NUL too.
    let at = |i: usize| line.get(i).copied().unwrap_or(0);
    let mut args = Vec::new();
    let mut p = 0;
    loop {
        while is_space(at(p)) {
            p += 1;
        }
        if at(p) == 0 {
            return Ok(args);
        }
        let start = p;
        let mut quoting = Quoting::Plain;
        let arg = loop {
            let c = at(p);
            match &mut quoting {
                Quoting::Plain => match c {
                    b' ' | b'\n' | b'\r' | b'\t' | 0 => break line.slice(start..p.min(line.len())),
                    b'"' | b'\'' => {
                        let before = line.get(start..p).unwrap_or_default().to_vec();
                        quoting = match c {
                            b'"' => Quoting::Double(before),
                            _ => Quoting::Single(before),
                        };
                    }
                    _ => {}
                },
                Quoting::Double(bytes) => match (c, at(p + 1)) {
                    (b'\\', b'x')
                        if hex_value(at(p + 2)).is_some() && hex_value(at(p + 3)).is_some() =>
                    {
                        let high = hex_value(at(p + 2)).unwrap_or(0);
                        let low = hex_value(at(p + 3)).unwrap_or(0);
                        bytes.push(high * 16 + low);
                        p += 3;
                    }
                    (b'\\', escaped) if escaped != 0 => {
                        bytes.push(match escaped {
                            b'n' => b'\n',
                            b'r' => b'\r',
                            b't' => b'\t',
                            b'b' => 0x08,
                            b'a' => 0x07,
                            other => other,
                        });
                        p += 1;
                    }
                    (b'"', next) => break close_quote(bytes, next)?,
                    (0, _) => return Err(ProtocolError::UnbalancedQuotes),
                    _ => bytes.push(c),
                },
                Quoting::Single(bytes) => match (c, at(p + 1)) {
                    (b'\\', b'\'') => {
                        bytes.push(b'\'');
                        p += 1;
                    }
                    (b'\'', next) => break close_quote(bytes, next)?,
                    (0, _) => return Err(ProtocolError::UnbalancedQuotes),
                    _ => bytes.push(c),
                },
            }
            p += 1;
        };
        args.push(arg);
        // Step past the closing quote or the separator (a NUL stays, and ends the line).
        if at(p) != 0 {
            p += 1;
        }
    }
}

/// Ends a quoted argument; the byte after the closing quote must be whitespace or the end.
fn close_quote(bytes: &mut Vec<u8>, next: u8) -> Result<Bytes, ProtocolError> {
    if next != 0 && !is_space(next) {
        return Err(ProtocolError::UnbalancedQuotes);
    }
    Ok(Bytes::from(std::mem::take(bytes)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(line: &[u8]) -> Result<Vec<Vec<u8>>, ProtocolError> {
        let args = split_inline(&Bytes::copy_from_slice(line))?;
        Ok(args.into_iter().map(|arg| arg.to_vec()).collect())
    }

    fn words(words: &[&str]) -> Result<Vec<Vec<u8>>, ProtocolError> {
        Ok(words.iter().map(|w| w.as_bytes().to_vec()).collect())
    }

    #[test]
    fn splits_like_sdssplitargs() {
        let cases: &[(&[u8], &[&str])] = &[
            (br#"set "a b" 'c\'d' "\x41""#, &["set", "a b", "c'd", "A"]),
            (b"  get   key  ", &["get", "key"]),
            (b"", &[]),
            (b" \t ", &[]),
            (br#""""#, &[""]),
            (br#"''"#, &[""]),
            (br#""\n\r\t\b\a\\\"\q""#, &["\n\r\t\x08\x07\\\"q"]),
            (br#""\x4""#, &["x4"]),
            (br#""\xzz""#, &["xzz"]),
            (br#"'a\nb'"#, &["a\\nb"]),
            (br#"a"b c""#, &["ab c"]),
            (b"a\x0bb", &["a\x0bb"]),
            (b"a\0b c", &["a"]),
            (b"ping\r", &["ping"]),
        ];
        for (line, want) in cases {
            assert_eq!(
                split(line),
                words(want),
                "{:?}",
                String::from_utf8_lossy(line)
            );
        }
    }

    #[test]
    fn quotes_must_close_before_a_space_or_the_end() {
        let cases: &[&[u8]] = &[
            br#"set "a"#,
            br#"set 'a"#,
            br#""a"b"#,
            br#"'a'b"#,
            br#""a\"#,
            b"\"a\0\"",
            br#""a"""#,
        ];
        for line in cases {
            assert_eq!(
                split(line),
                Err(ProtocolError::UnbalancedQuotes),
                "{:?}",
                String::from_utf8_lossy(line)
            );
        }
    }

    #[test]
    fn high_bytes_pass_through() {
        assert_eq!(
            split(b"\xff\xfe \"\xc3\xa9\""),
            Ok(vec![vec![0xff, 0xfe], vec![0xc3, 0xa9]])
        );
    }
}
