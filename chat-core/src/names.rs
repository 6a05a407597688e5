//! What a name may hold: usernames (unique after Unicode compatibility
//! normalization and case folding), display and group names, passwords.
//!
//! A username's *key* is the form the stores keep unique and every lookup
//! uses: `Alice`, `alice` and `ａｌｉｃｅ` (full-width) share the key `alice`.
//! The name as typed becomes the account's first display name. Characters
//! that show nothing or reorder text (controls, format characters such as
//! zero-width joiners and bidi overrides, unassigned code points) are
//! refused outright, and so are names that mix scripts (UTS #39
//! single-script rule), which stops `аlice` with a Cyrillic `а`.

use caseless::Caseless;
use unicode_normalization::UnicodeNormalization;
use unicode_properties::{GeneralCategory, UnicodeGeneralCategory};
use unicode_security::MixedScript;

use crate::error::{Error, Result};

/// Longest username, in characters (of its key).
pub const MAX_USERNAME_CHARS: usize = 64;
/// Shortest password, in characters.
pub const MIN_PASSWORD_CHARS: usize = 8;
/// Longest password, in bytes (argon2 takes any length; this bounds the work).
pub const MAX_PASSWORD_BYTES: usize = 1024;

/// The unique key of a username: NFKC of the full case folding of its
/// compatibility decomposition (Unicode's "compatibility caseless match",
/// D146, composed again). [`Error::InvalidInput`] for a name that is
/// empty, too long, mixes scripts or holds a character that is whitespace,
/// a control, a format character (zero-width, bidi), a separator, private
/// use or unassigned.
pub fn username_key(username: &str) -> Result<String> {
    if username.is_empty() {
        return Err(Error::invalid("username is empty"));
    }
    // Checked before the work below, which grows with the input.
    if username.chars().count() > MAX_USERNAME_CHARS {
        return Err(Error::invalid(format!(
            "username is longer than {MAX_USERNAME_CHARS} characters"
        )));
    }
    if let Some(c) = username.chars().find(|c| !username_char(*c)) {
        return Err(Error::invalid(format!(
            "username may not contain {} (U+{:04X})",
            describe(c),
            u32::from(c)
        )));
    }
    let key: String = username
        .chars()
        .nfd()
        .default_case_fold()
        .nfkd()
        .default_case_fold()
        .nfkc()
        .collect();
    if key.chars().count() > MAX_USERNAME_CHARS {
        return Err(Error::invalid(format!(
            "username is longer than {MAX_USERNAME_CHARS} characters"
        )));
    }
    // Normalization can make a character of those refused above (a
    // compatibility form of a space, say): the key must pass too.
    if let Some(c) = key.chars().find(|c| !username_char(*c)) {
        return Err(Error::invalid(format!(
            "username may not contain {} (U+{:04X}, after normalization)",
            describe(c),
            u32::from(c)
        )));
    }
    if !key.as_str().is_single_script() {
        return Err(Error::invalid(
            "username mixes scripts (for example Latin and Cyrillic letters)",
        ));
    }
    Ok(key)
}

/// Whether `c` may appear in a username.
fn username_char(c: char) -> bool {
    use GeneralCategory as G;
    !c.is_whitespace()
        && !matches!(
            c.general_category(),
            G::Control
                | G::Format
                | G::Surrogate
                | G::PrivateUse
                | G::Unassigned
                | G::SpaceSeparator
                | G::LineSeparator
                | G::ParagraphSeparator
        )
}

/// Checks a display name or group name (`what` names it in the error):
/// `text` is trimmed, must not be empty nor longer than `max_chars`, and
/// may not hold controls (NUL, newlines, tabs), bidi controls, line or
/// paragraph separators, private-use or unassigned code points. Zero-width
/// joiners and variation selectors stay allowed: emoji sequences use them.
/// Returns the trimmed text.
pub fn check_display_text<'a>(text: &'a str, what: &str, max_chars: usize) -> Result<&'a str> {
    let text = text.trim();
    if text.is_empty() {
        return Err(Error::invalid(format!("{what} is empty")));
    }
    if text.chars().count() > max_chars {
        return Err(Error::invalid(format!(
            "{what} is longer than {max_chars} characters"
        )));
    }
    if let Some(c) = text.chars().find(|c| !display_char(*c)) {
        return Err(Error::invalid(format!(
            "{what} may not contain {} (U+{:04X})",
            describe(c),
            u32::from(c)
        )));
    }
    Ok(text)
}

/// Whether `c` may appear in a display or group name.
fn display_char(c: char) -> bool {
    use GeneralCategory as G;
    !is_bidi_control(c)
        && !matches!(
            c.general_category(),
            G::Control
                | G::Surrogate
                | G::PrivateUse
                | G::Unassigned
                | G::LineSeparator
                | G::ParagraphSeparator
        )
}

/// The explicit bidirectional formatting characters (UAX #9): marks,
/// embeddings, overrides and isolates. They can make a name read backwards.
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// A word for the kind of a refused character.
fn describe(c: char) -> &'static str {
    use GeneralCategory as G;
    if is_bidi_control(c) {
        return "a bidi control character";
    }
    if c.is_whitespace() {
        return "whitespace";
    }
    match c.general_category() {
        G::Control => "a control character",
        G::Format => "an invisible format character",
        G::PrivateUse => "a private-use character",
        G::Unassigned => "an unassigned code point",
        G::LineSeparator | G::ParagraphSeparator | G::SpaceSeparator => "a separator",
        _ => "this character",
    }
}

/// Checks a new password: at least [`MIN_PASSWORD_CHARS`] characters, at
/// most [`MAX_PASSWORD_BYTES`] bytes. Logins take any password (a wrong one
/// is simply wrong).
pub fn check_new_password(password: &str) -> Result<()> {
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(Error::invalid(format!(
            "password must have at least {MIN_PASSWORD_CHARS} characters"
        )));
    }
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(Error::invalid(format!(
            "password is longer than {MAX_PASSWORD_BYTES} bytes"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(name: &str) -> String {
        username_key(name).unwrap_or_else(|e| panic!("{name:?}: {e}"))
    }

    #[test]
    fn case_and_compatibility_forms_share_one_key() {
        assert_eq!(key("Alice"), "alice");
        assert_eq!(key("ALICE"), key("alice"));
        // Full-width letters, a ligature, a long s, a Kelvin sign.
        assert_eq!(key("ＡＬＩＣＥ"), "alice");
        assert_eq!(key("ﬁona"), "fiona");
        assert_eq!(key("ſam"), "sam");
        assert_eq!(key("\u{212A}elvin"), "kelvin");
        // Full case folding: ß is ss, every sigma is σ.
        assert_eq!(key("Straße"), key("STRASSE"));
        assert_eq!(key("ΣΟΦΟΣ"), key("σοφος"));
        // Composed and decomposed accents.
        assert_eq!(key("Zoé"), key("zoe\u{301}"));
        assert_eq!(key("alice_1"), "alice_1");
    }

    #[test]
    fn invisible_and_reordering_characters_are_refused() {
        for bad in [
            "ali\u{200B}ce", // zero-width space
            "ali\u{200D}ce", // zero-width joiner
            "\u{FEFF}alice", // byte-order mark
            "alice\u{202E}", // right-to-left override
            "al\u{2066}ice", // left-to-right isolate
            "ali\u{00AD}ce", // soft hyphen
            "ali\0ce",
            "ali\nce",
            "a b",
            "a\u{3000}b",    // ideographic space
            "\u{E000}alice", // private use
            "\u{0378}x",     // unassigned
        ] {
            let err = username_key(bad).unwrap_err();
            assert!(matches!(err, Error::InvalidInput { .. }), "{bad:?}: {err}");
        }
    }

    #[test]
    fn mixed_scripts_are_refused_but_one_script_is_fine() {
        // A Cyrillic а (U+0430) among Latin letters.
        let err = username_key("\u{0430}lice").unwrap_err();
        assert!(err.to_string().contains("mixes scripts"), "{err}");
        assert_eq!(key("Алиса"), "алиса");
        assert_eq!(key("太郎"), "太郎");
        // Japanese mixes Han and kana as one writing system.
        assert!(username_key("山田たろう").is_ok());
        // Digits and underscores are common to every script.
        assert!(username_key("алиса_2").is_ok());
    }

    #[test]
    fn usernames_have_bounds() {
        assert!(username_key("").is_err());
        assert!(username_key(&"x".repeat(MAX_USERNAME_CHARS)).is_ok());
        assert!(username_key(&"x".repeat(MAX_USERNAME_CHARS + 1)).is_err());
        // A ligature that expands past the limit once normalized.
        assert!(username_key(&"ﬃ".repeat(MAX_USERNAME_CHARS / 2)).is_err());
    }

    #[test]
    fn display_names_refuse_controls_and_bidi_but_keep_emoji() {
        assert_eq!(check_display_text("  Zoé  ", "name", 10).unwrap(), "Zoé");
        // A family emoji is joined by zero-width joiners.
        assert!(check_display_text("👨\u{200D}👩\u{200D}👧 fans", "name", 20).is_ok());
        for bad in [
            "a\0b",
            "a\nb",
            "a\tb",
            "x\u{202E}y",
            "x\u{2029}y",
            "x\u{200F}",
        ] {
            assert!(check_display_text(bad, "name", 20).is_err(), "{bad:?}");
        }
        assert!(check_display_text("   ", "name", 20).is_err());
        assert!(check_display_text("abcdef", "name", 5).is_err());
    }

    #[test]
    fn passwords_need_eight_characters() {
        assert!(check_new_password("1234567").is_err());
        assert!(check_new_password("12345678").is_ok());
        // Characters, not bytes: eight accented letters are enough.
        assert!(check_new_password("éééééééé").is_ok());
        assert!(check_new_password(&"x".repeat(MAX_PASSWORD_BYTES + 1)).is_err());
    }
}
