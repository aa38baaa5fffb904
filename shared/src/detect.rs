//! Pure chat detectors (spec `02-semantics.md` §Chat and §Media): `++`
//! kudos, phrase kudos, emote uses, movie votes and media title cleaning.
//!
//! Every function takes text that is already HTML-entity-decoded and returns
//! findings only; deciding who is a known user, who is ignored and so on is
//! the caller's job. These run for every chat message, so they are written as
//! hand-made linear scans (no regex) that allocate little or nothing when
//! there is nothing to find.

use std::collections::{HashMap, HashSet};

/// May `c` be part of a `++` name? Unicode letters and digits, `_` and `-`.
fn is_name_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_' || c == '-'
}

/// Add `name` to `out` unless a case-insensitive equal is already there.
fn push_unique(out: &mut Vec<String>, seen: &mut HashSet<String>, name: &str) {
    if seen.insert(name.to_lowercase()) {
        out.push(name.to_string());
    }
}

/// The targets of `++name` and `name++`, in message order, each name once
/// (case-insensitive; the first casing is kept).
///
/// A run of two or more `+` is a marker; the name directly before it and the
/// name directly after it are both targets: `alice++bob` → `[alice, bob]`,
/// `++Alice++` → `[Alice]`, `bob++!` → `[bob]`.
pub fn plusplus_targets(text: &str) -> Vec<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut seen = HashSet::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'+' {
            i += 1;
            continue;
        }
        // A run of '+' from `start` to `i` (exclusive). '+' is ASCII, so
        // both ends are char boundaries.
        let start = i;
        while i < bytes.len() && bytes[i] == b'+' {
            i += 1;
        }
        if i - start < 2 {
            continue;
        }
        // The name right before the run.
        let before = &text[..start];
        let name_start =
            before.char_indices().rev().take_while(|&(_, c)| is_name_char(c)).last().map_or(start, |(idx, _)| idx);
        if name_start < start {
            push_unique(&mut out, &mut seen, &text[name_start..start]);
        }
        // The name right after the run.
        let after = &text[i..];
        let name_len = after.char_indices().find(|&(_, c)| !is_name_char(c)).map_or(after.len(), |(idx, _)| idx);
        if name_len > 0 {
            push_unique(&mut out, &mut seen, &after[..name_len]);
        }
        // The scan continues at the end of the run; the name after it holds
        // no '+', so it is skipped quickly and each byte is looked at O(1)
        // times.
    }
    out
}

/// One phrase kudos: `target` is credited for the trigger `phrase`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PhraseKudos {
    /// The neighbouring token, trimmed of `.,!?;:@`, as written.
    pub target: String,
    /// The lowercased trigger phrase, or `"haha"` for a laughter token.
    pub phrase: String,
}

/// Characters trimmed from a token before comparing it with the triggers.
const TRIGGER_TRIM: &[char] = &['.', ',', '!', '?', ';', ':'];
/// Characters trimmed from a neighbouring token before crediting it.
const TARGET_TRIM: &[char] = &['.', ',', '!', '?', ';', ':', '@'];

/// Is `token` (already trimmed) laughter, i.e. `^(ha|he|ho){2,}$` ignoring case?
fn is_laughter(token: &str) -> bool {
    let b = token.as_bytes();
    b.len() >= 4
        && b.len().is_multiple_of(2)
        && b.chunks_exact(2).all(|pair| {
            pair[0].eq_ignore_ascii_case(&b'h') && matches!(pair[1].to_ascii_lowercase(), b'a' | b'e' | b'o')
        })
}

/// Does `token` lowercase to exactly `lower` (which is already lowercase)?
/// Compares char by char without allocating.
fn eq_lowercase(token: &str, lower: &str) -> bool {
    if token.is_ascii() {
        // ASCII lowercases byte for byte (and a lowercase phrase holds no ASCII capital):
        // most tokens differ in length and are rejected without a look at their bytes.
        return token.len() == lower.len() && token.eq_ignore_ascii_case(lower);
    }
    token.chars().flat_map(char::to_lowercase).eq(lower.chars())
}

/// The phrase a token triggers, if any: a listed phrase first, then laughter.
fn trigger_of<'p>(token: &str, phrases: &'p [String]) -> Option<&'p str> {
    let t = token.trim_matches(TRIGGER_TRIM);
    if t.is_empty() {
        return None;
    }
    if let Some(p) = phrases.iter().find(|p| !p.is_empty() && eq_lowercase(t, p)) {
        return Some(p.as_str());
    }
    if is_laughter(t) {
        return Some("haha");
    }
    None
}

/// Phrase kudos (02-semantics.md §Chat 3): a whitespace token equal to a
/// trigger phrase (case-insensitive, trimmed of `.,!?;:`) or a laughter token
/// (counted as `haha`) credits the tokens right before and right after it
/// (trimmed of `.,!?;:@`, at least 2 characters). One result per target
/// (case-insensitive), under the first phrase in message order.
///
/// `phrases` must already be lowercased.
pub fn phrase_kudos(text: &str, phrases: &[String]) -> Vec<PhraseKudos> {
    let mut out: Vec<PhraseKudos> = Vec::new();
    let mut seen: HashSet<String> = HashSet::new();
    let mut credit = |token: &str, phrase: &str, out: &mut Vec<PhraseKudos>| {
        let target = token.trim_matches(TARGET_TRIM);
        if target.chars().nth(1).is_none() {
            return; // fewer than 2 characters
        }
        if seen.insert(target.to_lowercase()) {
            out.push(PhraseKudos { target: target.to_string(), phrase: phrase.to_string() });
        }
    };

    let mut tokens = text.split_whitespace().peekable();
    let mut prev: Option<&str> = None;
    while let Some(token) = tokens.next() {
        if let Some(phrase) = trigger_of(token, phrases) {
            if let Some(p) = prev {
                credit(p, phrase, &mut out);
            }
            if let Some(&next) = tokens.peek() {
                credit(next, phrase, &mut out);
            }
        }
        prev = Some(token);
    }
    out
}

/// A channel's emote list prepared for fast token lookup. Build it once per
/// list change and reuse it for every message.
#[derive(Debug, Clone, Default)]
pub struct EmoteSet {
    /// Emote names as CyTube lists them, without duplicates.
    names: Vec<String>,
    /// Token → index into `names`: each name itself, plus `#name` for names
    /// not starting with `#` (unless a listed name already is that token).
    lookup: HashMap<String, usize>,
    /// Shortest and longest lookup key in bytes, to skip most tokens cheaply.
    min_len: usize,
    max_len: usize,
}

impl EmoteSet {
    /// Build the set from emote names (empty names and duplicates are dropped).
    pub fn new<I: IntoIterator<Item = S>, S: Into<String>>(names: I) -> Self {
        let mut set = EmoteSet::default();
        for name in names {
            let name: String = name.into();
            if name.is_empty() || set.lookup.contains_key(&name) {
                continue;
            }
            set.lookup.insert(name.clone(), set.names.len());
            set.names.push(name);
        }
        // The `#name` forms come second so that a listed `#kappa` always
        // wins over the hashtag form of a listed `kappa`.
        for (idx, name) in set.names.iter().enumerate() {
            if !name.starts_with('#') {
                set.lookup.entry(format!("#{name}")).or_insert(idx);
            }
        }
        set.min_len = set.lookup.keys().map(String::len).min().unwrap_or(0);
        set.max_len = set.lookup.keys().map(String::len).max().unwrap_or(0);
        set
    }

    /// Number of distinct emote names.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// True when the list holds no emote.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// The emote names, in list order.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// The listed emote a whole token stands for, if any.
    pub fn lookup(&self, token: &str) -> Option<&str> {
        if token.len() < self.min_len || token.len() > self.max_len {
            return None;
        }
        self.lookup.get(token).map(|&idx| self.names[idx].as_str())
    }

    fn index_of(&self, token: &str) -> Option<usize> {
        if token.len() < self.min_len || token.len() > self.max_len {
            return None;
        }
        self.lookup.get(token).copied()
    }
}

/// Emote uses in a message: each whitespace-delimited token that equals an
/// emote name exactly (case-sensitive), or `#` + a name that lacks a leading
/// `#`. Every occurrence counts, under the name as listed. Returns
/// `(name, count)` pairs in order of first occurrence.
pub fn emote_uses<'a>(text: &str, emotes: &'a EmoteSet) -> Vec<(&'a str, u32)> {
    if emotes.is_empty() {
        return Vec::new();
    }
    // Position of each found emote in `out`; allocated on the first hit only.
    let mut slot: Vec<u32> = Vec::new();
    let mut out: Vec<(&'a str, u32)> = Vec::new();
    for token in text.split_whitespace() {
        let Some(idx) = emotes.index_of(token) else {
            continue;
        };
        if slot.is_empty() {
            slot = vec![u32::MAX; emotes.names.len()];
        }
        match slot[idx] {
            u32::MAX => {
                slot[idx] = out.len() as u32;
                out.push((emotes.names[idx].as_str(), 1));
            }
            pos => out[pos as usize].1 += 1,
        }
    }
    out
}

/// A movie vote: the message ends with `movie`, `film`, `vid` or `video`
/// (any case, at the start of a token) followed by `++` or `+` (→ +1) or
/// `--` or `-` (→ −1), then optional whitespace.
pub fn movie_vote(text: &str) -> Option<i8> {
    let s = text.trim_end();
    let (rest, vote) = if let Some(r) = s.strip_suffix("++") {
        (r, 1)
    } else if let Some(r) = s.strip_suffix('+') {
        (r, 1)
    } else if let Some(r) = s.strip_suffix("--") {
        (r, -1)
    } else if let Some(r) = s.strip_suffix('-') {
        (r, -1)
    } else {
        return None;
    };
    for word in ["movie", "film", "video", "vid"] {
        if rest.len() < word.len() {
            continue;
        }
        let cut = rest.len() - word.len();
        // A cut inside a multi-byte char cannot match an ASCII word.
        if !rest.is_char_boundary(cut) || !rest[cut..].eq_ignore_ascii_case(word) {
            continue;
        }
        let at_token_start = rest[..cut].chars().next_back().is_none_or(char::is_whitespace);
        if at_token_start {
            return Some(vote);
        }
    }
    None
}

/// Video file extensions dropped from the end of a title.
const VIDEO_EXTENSIONS: [&str; 10] = [".mp4", ".mkv", ".avi", ".webm", ".flv", ".mov", ".wmv", ".m4v", ".mpg", ".mpeg"];

/// Clean a media title (02-semantics.md §Media): drop one trailing video
/// extension (any case), turn `.` and `_` into spaces, collapse whitespace,
/// trim; an empty result becomes `Unknown`.
pub fn clean_title(raw: &str) -> String {
    let mut s = raw.trim_end();
    for ext in VIDEO_EXTENSIONS {
        if s.len() >= ext.len() {
            let cut = s.len() - ext.len();
            if s.is_char_boundary(cut) && s[cut..].eq_ignore_ascii_case(ext) {
                s = &s[..cut];
                break;
            }
        }
    }
    let mut out = String::with_capacity(s.len());
    for word in s.split(|c: char| c == '.' || c == '_' || c.is_whitespace()) {
        if word.is_empty() {
            continue;
        }
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    if out.is_empty() {
        "Unknown".to_string()
    } else {
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn default_phrases() -> Vec<String> {
        ["lol", "rofl", "lmao", "haha", "😂", "🤣", "😆"].iter().map(|s| s.to_string()).collect()
    }

    fn pk(text: &str) -> Vec<(String, String)> {
        phrase_kudos(text, &default_phrases()).into_iter().map(|k| (k.target, k.phrase)).collect()
    }

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect()
    }

    #[test]
    fn plusplus() {
        let cases: &[(&str, &[&str])] = &[
            ("Alice++ great pick", &["Alice"]),
            ("++Alice++", &["Alice"]),
            ("Alice++", &["Alice"]),
            ("nobody++ ghost++", &["nobody", "ghost"]),
            ("shadow text bob++", &["bob"]),
            ("alice++bob", &["alice", "bob"]),
            ("bob++!", &["bob"]),
            ("Zoë++", &["Zoë"]),
            ("some-user++", &["some-user"]),
            ("++under_score", &["under_score"]),
            ("c++", &["c"]),
            ("++", &[]),
            ("+++", &[]),
            ("a+b", &[]),
            ("x + + y", &[]),
            ("ALICE++ alice++ Alice++", &["ALICE"]),
            ("thanks @bob++ and ++carol.", &["bob", "carol"]),
            ("bob+++", &["bob"]),
            ("日本++", &["日本"]),
            ("movie++", &["movie"]),
            ("", &[]),
            ("   ", &[]),
            ("hello world", &[]),
            ("😂++", &[]),
        ];
        for (text, want) in cases {
            assert_eq!(plusplus_targets(text), *want, "{text:?}");
        }
    }

    #[test]
    fn lowercase_comparison_agrees_with_to_lowercase() {
        let phrases = ["lol", "😂", "k", "straße", "ǆ", "i̇"];
        let tokens =
            ["lol", "LOL", "LoL", "lo", "loll", "😂", "K", "\u{212A}", "STRASSE", "Straße", "ǅ", "Ǆ", "İ", "I", ""];
        for p in phrases {
            for t in tokens {
                assert_eq!(eq_lowercase(t, p), t.to_lowercase() == p, "{t:?} vs {p:?}");
            }
        }
    }

    #[test]
    fn phrases_examples() {
        assert_eq!(pk("lol bob"), pairs(&[("bob", "lol")]));
        assert_eq!(pk("Zoë haha"), pairs(&[("Zoë", "haha")]));
        assert_eq!(pk("hahaha Alice"), pairs(&[("Alice", "haha")]));
        assert_eq!(pk("lol bob haha"), pairs(&[("bob", "lol")]));
        assert_eq!(pk("bob lol alice"), pairs(&[("bob", "lol"), ("alice", "lol")]));
        assert_eq!(pk("a lol"), pairs(&[]));
        // Fixture lines without phrase kudos.
        assert_eq!(pk("hello everyone"), pairs(&[]));
        assert_eq!(pk("Alice++ great pick"), pairs(&[]));
    }

    #[test]
    fn phrases_edges() {
        assert_eq!(pk(""), pairs(&[]));
        assert_eq!(pk("   \t\n "), pairs(&[]));
        assert_eq!(pk("lol"), pairs(&[]));
        assert_eq!(pk("LOL, @bob!"), pairs(&[("bob", "lol")]));
        assert_eq!(pk("bob: ROFL"), pairs(&[("bob", "rofl")]));
        assert_eq!(pk("HeHeHo bob"), pairs(&[("bob", "haha")]));
        assert_eq!(pk("hah bob"), pairs(&[]));
        assert_eq!(pk("hahah bob"), pairs(&[]));
        assert_eq!(pk("haha!!! bob"), pairs(&[("bob", "haha")]));
        assert_eq!(pk("bob 😂"), pairs(&[("bob", "😂")]));
        assert_eq!(pk("bob 🤣 Bob"), pairs(&[("bob", "🤣")]));
        assert_eq!(pk("lolz bob"), pairs(&[]));
        assert_eq!(pk("@@ lol ..."), pairs(&[]));
        assert_eq!(pk("bob\u{a0}lol"), pairs(&[("bob", "lol")]));
        // Laughter is recorded as "haha" even with a custom list.
        let custom = vec!["gg".to_string()];
        let got = phrase_kudos("GG alice hoho bob", &custom);
        assert_eq!(
            got,
            vec![
                PhraseKudos { target: "alice".into(), phrase: "gg".into() },
                PhraseKudos { target: "bob".into(), phrase: "haha".into() },
            ]
        );
        // An empty phrase in the list matches nothing.
        assert!(phrase_kudos("bob x", &[String::new()]).is_empty());
    }

    fn fixture_emotes() -> EmoteSet {
        EmoteSet::new(["#kappa", "/pogchamp", "LUL", "monkaS"])
    }

    #[test]
    fn emotes_fixture_lines() {
        let set = fixture_emotes();
        assert_eq!(set.len(), 4);
        assert!(!set.is_empty());
        assert_eq!(emote_uses("#kappa #kappa /pogchamp", &set), vec![("#kappa", 2), ("/pogchamp", 1)]);
        assert_eq!(emote_uses("LUL that was it's LUL", &set), vec![("LUL", 2)]);
        assert_eq!(emote_uses("monkaS movie--", &set), vec![("monkaS", 1)]);
        assert_eq!(emote_uses("hello everyone", &set), vec![]);
    }

    #[test]
    fn emotes_rules() {
        let set = EmoteSet::new(vec!["kappa".to_string(), "#tag".to_string(), "kappa".to_string()]);
        assert_eq!(set.len(), 2);
        assert_eq!(set.names(), ["kappa", "#tag"]);
        // Hashtag form of a name without '#'; counted under the listed name.
        assert_eq!(emote_uses("#kappa kappa", &set), vec![("kappa", 2)]);
        // No '##tag' form for names that already start with '#'.
        assert_eq!(emote_uses("##tag #tag tag", &set), vec![("#tag", 1)]);
        // Case-sensitive, whole tokens only.
        assert_eq!(emote_uses("Kappa kappa! xkappa kappa:", &set), vec![]);
        assert_eq!(emote_uses("", &set), vec![]);
        assert_eq!(emote_uses("   ", &set), vec![]);
        assert_eq!(emote_uses("a\u{a0}kappa\tkappa\n", &set), vec![("kappa", 2)]);
        // A listed '#x' wins over the hashtag form of a listed 'x'.
        let both = EmoteSet::new(["x", "#x"]);
        assert_eq!(emote_uses("#x x #x", &both), vec![("#x", 2), ("x", 1)]);
        assert_eq!(both.lookup("#x"), Some("#x"));
        let empty = EmoteSet::new(Vec::<String>::new());
        assert!(empty.is_empty());
        assert_eq!(emote_uses("kappa", &empty), vec![]);
        let uni = EmoteSet::new(["😂cat", "Zoë"]);
        assert_eq!(emote_uses("Zoë #Zoë 😂cat", &uni), vec![("Zoë", 2), ("😂cat", 1)]);
    }

    #[test]
    fn movie_votes() {
        let cases: &[(&str, Option<i8>)] = &[
            ("movie++", Some(1)),
            ("this film--", Some(-1)),
            ("monkaS movie--", Some(-1)),
            ("VIDEO+ ", Some(1)),
            ("vid-", Some(-1)),
            ("great Film+\t\n", Some(1)),
            ("Video--   ", Some(-1)),
            ("amovie++", None),
            ("movie++ yes", None),
            ("movie", None),
            ("movie +", None),
            ("movie+++", None),
            ("movie+-", None),
            ("movie---", None),
            ("bob++", None),
            ("++", None),
            ("-", None),
            ("", None),
            ("   ", None),
            ("é++", None),
            ("ñvid++", None),
            ("xvideo++", None),
            ("vidéo++", None),
            ("hello everyone", None),
        ];
        for (text, want) in cases {
            assert_eq!(movie_vote(text), *want, "{text:?}");
        }
    }

    #[test]
    fn titles() {
        let cases = [
            ("Never_Gonna.Give.You.Up.mp4", "Never Gonna Give You Up"),
            ("Night_of_the.Living.Dead.MKV", "Night of the Living Dead"),
            ("plain title", "plain title"),
            ("  spaced   out  ", "spaced out"),
            ("a.mp4.mkv", "a mp4"),
            ("clip.MpEg", "clip"),
            ("clip.webm  ", "clip"),
            ("archive.tar.gz", "archive tar gz"),
            ("mp4", "mp4"),
            (".mp4", "Unknown"),
            ("", "Unknown"),
            ("   ", "Unknown"),
            ("._._", "Unknown"),
            ("Zoë_und_Jürgen.avi", "Zoë und Jürgen"),
            ("日本語.mov", "日本語"),
            ("éé", "éé"),
        ];
        for (raw, want) in cases {
            assert_eq!(clean_title(raw), want, "{raw:?}");
        }
    }

    /// One mebibyte of text must be handled in linear time by every detector.
    #[test]
    fn large_inputs_are_linear() {
        let mib = 1 << 20;
        let phrases = default_phrases();
        let set = fixture_emotes();
        let inputs = [
            "a".repeat(mib),
            "+".repeat(mib),
            "a+".repeat(mib / 2),
            "ab++".repeat(mib / 4),
            "é".repeat(mib / 2) + "++",
            "lol ".repeat(mib / 4),
            "haha bob ".repeat(mib / 9),
            "LUL #kappa ".repeat(mib / 11),
            " ".repeat(mib),
            "movie".repeat(mib / 5) + "++",
            "-".repeat(mib),
        ];
        let start = std::time::Instant::now();
        for text in &inputs {
            let _ = plusplus_targets(text);
            let _ = phrase_kudos(text, &phrases);
            let _ = emote_uses(text, &set);
            let _ = movie_vote(text);
            let _ = clean_title(text);
        }
        // Quadratic behaviour on a MiB would take minutes, even unoptimised.
        assert!(start.elapsed().as_secs() < 20, "{:?}", start.elapsed());
        assert_eq!(plusplus_targets(&inputs[3]), vec!["ab"]);
        assert_eq!(emote_uses(&inputs[7], &set), vec![("LUL", (mib / 11) as u32), ("#kappa", (mib / 11) as u32)]);
        assert_eq!(phrase_kudos(&inputs[6], &phrases).len(), 1);
    }
}
