//! HTML entities in chat text: CyTube escapes what users type (`&#39;`, `&amp;`...), and
//! detection runs on the decoded text.
//!
//! Hand-written rather than a general HTML-entity crate: CyTube produces only the few
//! entities below, and decoding the whole HTML5 table would turn text users typed
//! literally (`&copy;` written as such reaches us as `&amp;copy;`) into something else.

use std::borrow::Cow;

/// Decode the HTML entities CyTube produces: `&amp; &lt; &gt; &quot; &#39;
/// &apos; &nbsp;` (to U+00A0), `&#NNN;` and `&#xHH;`. Anything else,
/// including numeric references to invalid code points or NUL, is left as
/// written. Text without `&` is returned borrowed, unchanged.
pub fn decode_html_entities(s: &str) -> Cow<'_, str> {
    let Some(first) = s.find('&') else {
        return Cow::Borrowed(s);
    };
    let mut out = String::with_capacity(s.len());
    out.push_str(&s[..first]);
    let mut rest = &s[first..];
    // Invariant at the top of the loop: `rest` starts with '&'.
    loop {
        match decode_one(rest) {
            Some((ch, used)) => {
                out.push(ch);
                rest = &rest[used..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
        match rest.find('&') {
            Some(i) => {
                out.push_str(&rest[..i]);
                rest = &rest[i..];
            }
            None => {
                out.push_str(rest);
                break;
            }
        }
    }
    Cow::Owned(out)
}

/// Decode the entity at the start of `s` (which starts with `&`): the
/// character and the number of bytes the entity used.
fn decode_one(s: &str) -> Option<(char, usize)> {
    // The longest entity we know is `&#x10FFFF;` / `&#1114111;` (10 bytes);
    // look no further so that decoding stays linear.
    let window = &s.as_bytes()[..s.len().min(12)];
    let semi = window.iter().position(|&b| b == b';')?;
    let body = &s[1..semi]; // between '&' and ';' (ASCII bytes only matter)
    let used = semi + 1;
    let ch = match body {
        "amp" => '&',
        "lt" => '<',
        "gt" => '>',
        "quot" => '"',
        "apos" => '\'',
        "nbsp" => '\u{a0}',
        _ => {
            let num = body.strip_prefix('#')?;
            let code = if let Some(hex) = num.strip_prefix(['x', 'X']) {
                if hex.is_empty() || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return None;
                }
                u32::from_str_radix(hex, 16).ok()?
            } else {
                if num.is_empty() || !num.bytes().all(|b| b.is_ascii_digit()) {
                    return None;
                }
                num.parse::<u32>().ok()?
            };
            if code == 0 {
                return None;
            }
            char::from_u32(code)?
        }
    };
    Some((ch, used))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_entities() {
        let d = |s: &str| decode_html_entities(s).into_owned();
        assert!(matches!(decode_html_entities("plain text"), Cow::Borrowed(_)));
        assert_eq!(d(""), "");
        assert_eq!(d("it&#39;s"), "it's");
        assert_eq!(d("&amp;&lt;&gt;&quot;&apos;"), "&<>\"'");
        assert_eq!(d("a&nbsp;b"), "a\u{a0}b");
        assert_eq!(d("&#65;&#x42;&#X43;&#x1F602;"), "ABC😂");
        assert_eq!(d("&amp;lt;"), "&lt;");
        assert_eq!(d("a & b"), "a & b");
        assert_eq!(d("&"), "&");
        assert_eq!(d("&&amp;"), "&&");
        assert_eq!(d("&amp"), "&amp");
        assert_eq!(d("&unknown;"), "&unknown;");
        assert_eq!(d("&#0;"), "&#0;");
        assert_eq!(d("&#xD800;"), "&#xD800;");
        assert_eq!(d("&#x110000;"), "&#x110000;");
        assert_eq!(d("&#99999999999;"), "&#99999999999;");
        assert_eq!(d("&#;&#x;"), "&#;&#x;");
        assert_eq!(d("&AMP;"), "&AMP;");
        assert_eq!(d("Zoë &amp; 😂"), "Zoë & 😂");
        assert_eq!(d("&é;"), "&é;");
        assert_eq!(d("&ééééééé;"), "&ééééééé;");
        // Long input stays linear.
        let long = "&amp;x".repeat(200_000);
        assert_eq!(d(&long).len(), 400_000);
        let amps = "&".repeat(1 << 20);
        assert_eq!(d(&amps).len(), 1 << 20);
    }
}
