//! How text becomes terms: the word splitter with letter folding shared by every field and by
//! queries, the stop words a query may omit, and Markdown rendered as plain text for snippets.

use std::sync::Arc;

use tantivy::tokenizer::{
    Language, RawTokenizer, Stemmer, TextAnalyzer, Token, TokenFilter, TokenStream, Tokenizer,
};

/// Characters that join two letters into one word as an apostrophe does (Uzbek Latin oʻ, gʻ and
/// the tutuq belgisi ʼ, English "ministry's"), in all the forms keyboards produce them.
fn is_apostrophe(c: char) -> bool {
    matches!(
        c,
        '\'' | '\u{2019}' | '\u{2018}' | '\u{02BB}' | '\u{02BC}' | '`' | '\u{00B4}' | '\u{2032}'
    )
}

/// The letter a query typed on a Russian or plain Latin keyboard uses for `c`, or `None` when
/// `c` is kept (or dropped, for apostrophes: see [`fold_word`]). Lower-case input.
fn fold_char(c: char) -> Option<char> {
    Some(match c {
        // The members' Cyrillic letters beyond Russian's, and ё.
        'ү' | 'ұ' | 'ў' => 'у',
        'қ' => 'к',
        'ң' => 'н',
        'ғ' => 'г',
        'ә' => 'а',
        'ө' => 'о',
        'і' | 'ї' => 'и',
        'һ' => 'х',
        'ё' => 'е',
        'җ' => 'ж',
        // Tajik.
        'ҳ' => 'х',
        'ҷ' => 'ч',
        'ӣ' => 'и',
        'ӯ' => 'у',
        // Latin letters with diacritics, including the members' Latin alphabets
        // (Uzbek, Azerbaijani, Kazakh Latin, Turkmen).
        'à' | 'á' | 'â' | 'ã' | 'ä' | 'å' | 'ā' | 'ă' | 'ą' => 'a',
        'ç' | 'ć' | 'č' | 'ĉ' => 'c',
        'ď' | 'đ' => 'd',
        'è' | 'é' | 'ê' | 'ë' | 'ē' | 'ė' | 'ę' | 'ě' | 'ə' => 'e',
        // ǵ: Kazakh Latin of 2018 and Karakalpak, for the ғ that ğ writes elsewhere.
        'ğ' | 'ĝ' | 'ģ' | 'ǵ' => 'g',
        'ì' | 'í' | 'î' | 'ï' | 'ī' | 'ı' | 'į' => 'i',
        'ķ' => 'k',
        'ł' | 'ľ' | 'ĺ' | 'ļ' => 'l',
        'ñ' | 'ń' | 'ň' | 'ņ' => 'n',
        'ò' | 'ó' | 'ô' | 'õ' | 'ö' | 'ø' | 'ō' | 'ő' => 'o',
        'ř' | 'ŕ' => 'r',
        'ś' | 'š' | 'ş' | 'ș' => 's',
        'ť' | 'ţ' | 'ț' => 't',
        'ù' | 'ú' | 'û' | 'ü' | 'ū' | 'ů' | 'ű' | 'ų' => 'u',
        'ý' | 'ÿ' => 'y',
        'ź' | 'ż' | 'ž' => 'z',
        _ => return None,
    })
}

/// A lower-case word with its letters folded (see [`fold_char`]) and apostrophes dropped, so
/// that "Өскемен", "оскемен", "Oʻzbekiston" and "O'zbekiston" meet.
pub fn fold_word(word: &str) -> String {
    folded_chars(word).collect()
}

/// The characters of [`fold_word`]. Combining marks left after composition (the dot of a
/// lower-cased Turkish İ) are dropped, as the letters they would accent fold to plain ones. In
/// a word that mixes Cyrillic and Latin letters, the letters of the fewer script that look
/// like letters of the other are read as those: "EAЭС" typed with Latin E and A is "ЕАЭС", and
/// "dаta" typed with a Cyrillic а (a keyboard switched, a text pasted from a scan) is "data".
/// The Armenian ligature և is the two letters it joins, ե and ւ: the spelling reform wrote
/// «Երևան» with it and texts before and outside it write «Երեւան», one word to a reader. So is
/// ե followed by վ, the ligature's capitals (ԵՎ lower-cases to եվ) and its spelling on a
/// keyboard without it («Երեվան»).
fn folded_chars(word: &str) -> impl Iterator<Item = char> + '_ {
    let to = mixed_script_reading(word);
    let mut prev = '\0';
    word.chars()
        .filter(|c| !is_apostrophe(*c) && !unicode_normalization::char::is_combining_mark(*c))
        .flat_map(move |c| {
            let c = match to {
                Some(Script::Cyrillic) => cyrillic_look_alike(c),
                Some(Script::Latin) => latin_look_alike(c),
                None => c,
            };
            let (first, second) = match c {
                '\u{0587}' => ('ե', Some('ւ')),
                'վ' if prev == 'ե' => ('ւ', None),
                _ => (fold_char(c).unwrap_or(c), None),
            };
            prev = second.unwrap_or(first);
            std::iter::once(first).chain(second)
        })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Script {
    Latin,
    Cyrillic,
}

/// How a lower-case word that mixes Latin and Cyrillic letters is read: in Latin when its
/// Cyrillic letters are fewer than its Latin ones and each looks like a Latin letter ("dаta",
/// "ICТ", "Azәrbaycan" with a Cyrillic ә), else in Cyrillic ("EAЭС", "СMИ", «мəселе» with a
/// Latin ə, and a tie such as "EС": Russian abbreviations typed half in Latin are the
/// commoner); `None` for a word of one script. Latin letters with diacritics count as Latin:
/// the Azerbaijani ə and the Kazakh ә are one letter to the eye, and a word typed with the
/// other one is mixed.
fn mixed_script_reading(word: &str) -> Option<Script> {
    let (mut latin, mut cyrillic, mut all_look_latin) = (0usize, 0usize, true);
    for c in word.chars() {
        if is_latin_letter(c) {
            latin += 1;
        } else if ('\u{0400}'..='\u{04FF}').contains(&c) {
            cyrillic += 1;
            all_look_latin &= latin_look_alike(c) != c;
        }
    }
    match (latin, cyrillic) {
        (0, _) | (_, 0) => None,
        (l, c) if c < l && all_look_latin => Some(Script::Latin),
        _ => Some(Script::Cyrillic),
    }
}

/// Whether `c` (lower case) is a Latin letter: plain, or with diacritics (Latin-1, Latin
/// Extended-A and -B, the IPA block that holds ə, Latin Extended Additional).
fn is_latin_letter(c: char) -> bool {
    c.is_ascii_lowercase()
        || (matches!(c, '\u{00C0}'..='\u{02AF}' | '\u{1E00}'..='\u{1EFF}') && c.is_alphabetic())
}

/// Whether a lower-case word holds both Latin and Cyrillic letters.
fn is_mixed_script(word: &str) -> bool {
    mixed_script_reading(word).is_some()
}

/// The Cyrillic letter a lower-case Latin letter is mistaken for (in print or on a keyboard
/// switched halfway through a word), or the letter itself.
fn cyrillic_look_alike(c: char) -> char {
    match c {
        'a' => 'а',
        'b' => 'в',
        'c' => 'с',
        'e' => 'е',
        'h' => 'н',
        'i' => 'і',
        'k' => 'к',
        'm' => 'м',
        'o' => 'о',
        'p' => 'р',
        't' => 'т',
        'x' => 'х',
        'y' => 'у',
        // Azerbaijani ə and Kazakh ә.
        'ə' => 'ә',
        _ => c,
    }
}

/// The Latin letter a lower-case Cyrillic letter looks like (the inverse of
/// [`cyrillic_look_alike`]), or the letter itself.
fn latin_look_alike(c: char) -> char {
    match c {
        'а' => 'a',
        'в' => 'b',
        'с' => 'c',
        'е' => 'e',
        'н' => 'h',
        'і' => 'i',
        'к' => 'k',
        'м' => 'm',
        'о' => 'o',
        'р' => 'p',
        'т' => 't',
        'х' => 'x',
        'у' => 'y',
        'ә' => 'ə',
        _ => c,
    }
}

/// Whether [`fold_word`] leaves `word` as it is: true for plain Latin or Russian letters
/// (but ё), digits, and nothing else (then [`fold_word`] decides). The common case, checked
/// without building a new word.
fn folds_to_itself(word: &str) -> bool {
    word.chars().all(folds_to_itself_char) && !is_mixed_script(word)
}

/// Whether [`fold_char`] keeps `c` and it is no apostrophe: plain lower-case Latin and Russian
/// letters (but ё) and digits.
#[inline]
fn folds_to_itself_char(c: char) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit() || ('а'..='я').contains(&c)
}

/// Whether `c` belongs in a word: a letter or digit. Plain Latin and Russian letters are
/// answered without the general Unicode tables (the slow path for Cyrillic).
#[inline]
fn is_word_char(c: char) -> bool {
    if c.is_ascii() {
        c.is_ascii_alphanumeric()
    } else if ('\u{0400}'..='\u{0481}').contains(&c) {
        // Cyrillic letters: Ѐ–ҁ (U+0482 onward are a sign and combining marks).
        true
    } else {
        c.is_alphanumeric()
    }
}

/// Characters that keep a word whole and are dropped from it: the soft hyphen of text
/// hyphenated for print (and extracted from PDFs), the zero-width joiners, the word joiner and
/// a byte-order mark left inside a text — and, visible but read the same way, the Armenian
/// emphasis, exclamation and question marks (՛ ՜ ՞), written over the stressed vowel inside
/// the word they mark: «Ինչպե՞ս» is the word «Ինչպես».
#[inline]
fn is_invisible_joiner(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}'
            | '\u{200C}'
            | '\u{200D}'
            | '\u{2060}'
            | '\u{FEFF}'
            | '\u{055B}'
            | '\u{055C}'
            | '\u{055E}'
    )
}

/// Whether `c` continues a word it does not start: a combining mark (a decomposed "й" is и and
/// U+0306), or an invisible joiner.
#[inline]
fn joins_word(c: char) -> bool {
    is_invisible_joiner(c) || unicode_normalization::char::is_combining_mark(c)
}

/// `word` lower-cased as `str::to_lowercase` does, with a fast path for plain Latin and
/// Cyrillic (U+0400–U+045F) words. A word holding combining marks or invisible joiners is
/// composed (NFC) and the joiners dropped first, so that "раи\u{0306}он" and "инфор\u{00AD}мация"
/// read as "район" and "информация".
fn lowercase(word: &str) -> String {
    let mut out = String::with_capacity(word.len());
    lowercase_into(word, &mut out);
    out
}

/// [`lowercase`] written into `out` (emptied first), reusing its buffer.
fn lowercase_into(word: &str, out: &mut String) {
    out.clear();
    for c in word.chars() {
        match simple_lowercase(c) {
            Some(lower) => out.push(lower),
            None => {
                out.clear();
                if word.chars().any(joins_word) {
                    use unicode_normalization::UnicodeNormalization;
                    let composed: String = word
                        .chars()
                        .filter(|c| !is_invisible_joiner(*c))
                        .nfc()
                        .collect();
                    out.push_str(&composed.to_lowercase());
                } else {
                    out.push_str(&word.to_lowercase());
                }
                return;
            }
        }
    }
}

/// `c` lower-cased, for plain Latin and Cyrillic (U+0400–U+045F) and other ASCII; `None` for
/// the rest, whose words [`str::to_lowercase`] lower-cases (it knows letters whose lower case
/// depends on their place in the word).
#[inline]
fn simple_lowercase(c: char) -> Option<char> {
    Some(match c {
        'A'..='Z' => c.to_ascii_lowercase(),
        // А–Я → а–я; Ѐ–Џ → ѐ–џ.
        '\u{0410}'..='\u{042F}' => char::from_u32(c as u32 + 0x20).unwrap_or(c),
        '\u{0400}'..='\u{040F}' => char::from_u32(c as u32 + 0x50).unwrap_or(c),
        _ if c.is_ascii() || ('\u{0430}'..='\u{045F}').contains(&c) => c,
        _ => return None,
    })
}

/// The words of `text` as `(byte range, lower-cased word)`: runs of letters and digits, with an
/// apostrophe kept inside a word when letters stand on both sides of it.
pub fn words(text: &str) -> Vec<(usize, usize, String)> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < text.len() {
        i = match word_at(text, i) {
            Ok(end) => {
                out.push((i, end, lowercase(&text[i..end])));
                end
            }
            Err(next) => next,
        };
    }
    out
}

/// The word that starts at byte `i` of `text` (a character boundary): `Ok` with the byte where
/// it ends, or `Err` with the next character's byte when no word starts at `i`. A word is a run
/// of letters and digits, with an apostrophe kept inside it when letters stand on both sides —
/// the one definition of a word, for [`words`] and the tokenizer.
fn word_at(text: &str, i: usize) -> Result<usize, usize> {
    let mut chars = text.get(i..).unwrap_or_default().char_indices().peekable();
    match chars.next() {
        Some((_, c)) if is_word_char(c) => {}
        Some((_, c)) => return Err(i + c.len_utf8()),
        None => return Err(text.len()),
    }
    while let Some(&(j, c)) = chars.peek() {
        chars.next();
        let inside = is_word_char(c)
            || joins_word(c)
            || (is_apostrophe(c) && chars.peek().is_some_and(|(_, n)| is_word_char(*n)));
        if !inside {
            return Ok(i + j);
        }
    }
    Ok(text.len())
}

/// The end of the word starting at byte `i` of `text` when it is plain — ASCII letters and
/// digits, Russian letters А–я — written lower-cased into `out`; `None` (with `out` in any
/// state) for any other word, which [`word_at`] then reads. Bytes, not characters: the common
/// case of the federation's text, without decoding each character; what is lower case already
/// is copied in runs.
#[inline(always)]
fn plain_word_at(text: &str, i: usize, out: &mut String) -> Option<usize> {
    let b = text.as_bytes();
    // The bytes from `run` on are copied as they are when the word ends.
    let (mut j, mut run) = (i, i);
    // Whether Latin and Cyrillic letters were seen: a word of both is read generally.
    let (mut latin, mut cyrillic) = (false, false);
    let end = loop {
        let Some(&x) = b.get(j) else { break j };
        if x.is_ascii_alphanumeric() {
            latin |= x.is_ascii_alphabetic();
            if x.is_ascii_uppercase() {
                out.push_str(text.get(run..j)?);
                out.push(x.to_ascii_lowercase() as char);
                run = j + 1;
            }
            j += 1;
        } else if x < 0x80 {
            // An apostrophe may join two words into one: the general reading decides.
            if x == b'\'' || x == b'`' {
                return None;
            }
            break j;
        } else if x == 0xD0 || x == 0xD1 {
            cyrillic = true;
            // U+0400–U+047F: two bytes, the second a continuation byte.
            let cp = (u32::from(x & 0x1F) << 6) | u32::from(*b.get(j + 1)? & 0x3F);
            match cp {
                0x0430..=0x044F => {}
                0x0410..=0x042F => {
                    out.push_str(text.get(run..j)?);
                    out.push(char::from_u32(cp + 0x20)?);
                    run = j + 2;
                }
                _ => return None,
            }
            j += 2;
        } else {
            // Another character: the word ends before it unless it belongs in a word (and
            // no word starts with it here).
            let c = text.get(j..)?.chars().next()?;
            if j == i || is_word_char(c) || is_apostrophe(c) || joins_word(c) {
                return None;
            }
            break j;
        }
    };
    if latin && cyrillic {
        return None;
    }
    out.push_str(text.get(run..end)?);
    Some(end)
}

/// The tokenizer of every Accord field: [`words`], each emitted folded and, when folding
/// changed it, also as written (lower-cased) at the same position, so that a query typed with
/// the exact letters ranks the exact form first while a plain-letter query still finds it.
#[derive(Debug, Clone, Default)]
pub struct FoldingTokenizer {
    /// The tokens of the last text (the first `len`), then spare ones: their buffers are
    /// written over by the next text, so that indexing allocates nothing per word.
    tokens: Vec<Token>,
    len: usize,
    /// The word being read, lower-cased.
    word: String,
}

/// The tokens of one text.
#[derive(Debug)]
pub struct FoldingTokenStream<'a> {
    tokens: &'a mut [Token],
    next: usize,
}

impl FoldingTokenizer {
    /// The next token slot, its text emptied, at `position` and the byte range `from..to`.
    fn slot(&mut self, from: usize, to: usize, position: usize) -> &mut Token {
        if self.len == self.tokens.len() {
            self.tokens.push(Token::default());
        }
        let t = &mut self.tokens[self.len];
        self.len += 1;
        t.offset_from = from;
        t.offset_to = to;
        t.position = position;
        t.position_length = 1;
        t.text.clear();
        t
    }
}

impl Tokenizer for FoldingTokenizer {
    type TokenStream<'a> = FoldingTokenStream<'a>;

    fn token_stream<'a>(&'a mut self, text: &'a str) -> FoldingTokenStream<'a> {
        // One pass over the text's bytes: a plain word (the common case) is split off and
        // lower-cased as it is read, straight into its token; any other goes through the
        // character-wise reading.
        self.len = 0;
        let b = text.as_bytes();
        let mut position = 0;
        let mut i = 0;
        while i < b.len() {
            if b[i] < 0x80 && !b[i].is_ascii_alphanumeric() {
                i += 1;
                continue;
            }
            let len = self.len;
            let token = self.slot(i, i, position);
            if let Some(end) = plain_word_at(text, i, &mut token.text) {
                token.offset_to = end;
                position += 1;
                i = end;
                continue;
            }
            self.len = len;
            match word_at(text, i) {
                Ok(end) => {
                    self.word_tokens(&text[i..end], i, position);
                    position += 1;
                    i = end;
                }
                Err(next) => i = next,
            }
        }
        FoldingTokenStream {
            tokens: &mut self.tokens[..self.len],
            next: 0,
        }
    }
}

impl FoldingTokenizer {
    /// The tokens of `word`, which starts at byte `from`, at `position`: folded and, when
    /// folding changed it, as written (lower-cased) too.
    fn word_tokens(&mut self, word: &str, from: usize, position: usize) {
        let to = from + word.len();
        let mut lower = std::mem::take(&mut self.word);
        lowercase_into(word, &mut lower);
        let folded = &mut self.slot(from, to, position).text;
        if folds_to_itself(&lower) {
            folded.push_str(&lower);
        } else {
            folded.extend(folded_chars(&lower));
            if *folded != lower {
                self.slot(from, to, position).text.push_str(&lower);
            }
        }
        self.word = lower;
    }
}

impl TokenStream for FoldingTokenStream<'_> {
    fn advance(&mut self) -> bool {
        if self.next < self.tokens.len() {
            self.next += 1;
            true
        } else {
            false
        }
    }

    // Filters read and edit the current token only after `advance` returned true, so
    // `next - 1` is in range then.
    fn token(&self) -> &Token {
        &self.tokens[self.next - 1]
    }

    fn token_mut(&mut self) -> &mut Token {
        &mut self.tokens[self.next - 1]
    }
}

/// Slots of a language's stem memory: one word and its stem each, 64 bytes, so 2 MiB per
/// language.
const STEM_SLOTS: usize = 32_768;
/// Parts of a language's stem memory, each behind its own lock: the index writer's threads
/// stem at the same time and seldom want the same part.
const STEM_STRIPES: usize = 64;
/// Bytes of a slot for the word and its stem; longer words are stemmed every time.
const STEM_SLOT_BYTES: usize = 62;
/// Slots of the stem memory of one analyser's copy ([`LocalStems`]): 512 KiB, made only by
/// the copies that index (four per segment being written). With 2,048 slots, the bulk-ingest
/// benchmark's vocabulary (~14,000 word forms a language) found its word in them for 39 % of
/// the tokens (numbers aside) and stemming took 9.0 % of the run's CPU; with 8,192 and numbers
/// left unstemmed, 6.9 % (one profiled run each, docs/BENCHMARKS.md).
const LOCAL_STEM_SLOTS: usize = 8192;
/// Tokens a copy of an analyser stems through the shared memory before it takes a memory of its
/// own: a query's few words never pay for one.
const LOCAL_STEMS_AFTER: u32 = 1024;
/// Set in [`StemSlot::stem`] when the stem is the word's own beginning (Russian always): then
/// only the word is kept, and words up to [`STEM_SLOT_BYTES`] fit.
const STEM_IS_PREFIX: u8 = 0x80;

/// One remembered word and its stem, in one cache line: a lookup reads one place in memory.
/// (A map of strings read three: its table, the word's buffer and the stem's; those misses were
/// most of what the memory cost, 8 % of a bulk ingest's CPU.)
#[derive(Clone, Copy)]
struct StemSlot {
    /// Length of the word; 0 for an empty slot.
    word: u8,
    /// Length of the stem, with [`STEM_IS_PREFIX`] when it is not kept apart.
    stem: u8,
    /// The word, then the stem unless it is the word's beginning.
    bytes: [u8; STEM_SLOT_BYTES],
}

impl StemSlot {
    const EMPTY: StemSlot = StemSlot {
        word: 0,
        stem: 0,
        bytes: [0; STEM_SLOT_BYTES],
    };

    /// A slot for `word` → `stem`, or `None` if they do not fit.
    fn new(word: &str, stem: &str) -> Option<StemSlot> {
        let (w, st) = (word.as_bytes(), stem.as_bytes());
        let mut slot = StemSlot::EMPTY;
        if w.is_empty() || w.len() > STEM_SLOT_BYTES {
            return None;
        }
        slot.bytes[..w.len()].copy_from_slice(w);
        slot.word = w.len() as u8;
        if w.starts_with(st) {
            slot.stem = st.len() as u8 | STEM_IS_PREFIX;
        } else {
            let end = w
                .len()
                .checked_add(st.len())
                .filter(|&e| e <= STEM_SLOT_BYTES)?;
            slot.bytes[w.len()..end].copy_from_slice(st);
            slot.stem = st.len() as u8;
        }
        Some(slot)
    }

    /// Replaces `word` by its stem if this slot holds it; false if not.
    fn apply(&self, word: &mut String) -> bool {
        let Some(stem) = self.stem_of(word.as_bytes()) else {
            return false;
        };
        // A stem that is the word's beginning (every Russian one) is the word cut short: its
        // end is a character boundary of the word, as it was of the word it was made from.
        if self.stem & STEM_IS_PREFIX != 0 && word.is_char_boundary(stem.len()) {
            word.truncate(stem.len());
            return true;
        }
        // Other stems are whole characters of valid UTF-8 (they were strings); the word's own
        // buffer takes the stem: no allocation per token.
        match std::str::from_utf8(stem) {
            Ok(stem) => {
                word.clear();
                word.push_str(stem);
                true
            }
            Err(_) => false,
        }
    }

    /// The stem of `word` if this slot holds it.
    fn stem_of(&self, word: &[u8]) -> Option<&[u8]> {
        let n = usize::from(self.word);
        if n == 0 || n != word.len() || self.bytes[..n] != *word {
            return None;
        }
        let len = usize::from(self.stem & !STEM_IS_PREFIX);
        if self.stem & STEM_IS_PREFIX != 0 {
            self.bytes.get(..len)
        } else {
            self.bytes.get(n..n + len)
        }
    }
}

/// Word → stem for one language, shared by every thread: a fixed table where each word has one
/// slot, chosen by its hash, and a new word takes the slot from the one there. Tantivy starts new
/// indexing threads at every index commit (five times a second under load), so a memory per
/// thread was empty again before it had learnt a federation's vocabulary. The hash is not keyed:
/// a signer who picks colliding words only makes them push each other out, so that they are
/// stemmed each time, as with no memory; no lookup ever reads more than one slot.
struct StemCache {
    stripes: Vec<std::sync::Mutex<Vec<StemSlot>>>,
}

impl std::fmt::Debug for StemCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StemCache")
            .field("slots", &STEM_SLOTS)
            .finish()
    }
}

impl StemCache {
    fn new() -> StemCache {
        StemCache {
            stripes: (0..STEM_STRIPES)
                .map(|_| std::sync::Mutex::new(vec![StemSlot::EMPTY; STEM_SLOTS / STEM_STRIPES]))
                .collect(),
        }
    }

    /// The stem memory of `language`, created at its first use.
    fn of(language: Language) -> Arc<StemCache> {
        static CACHES: std::sync::Mutex<Vec<(Language, Arc<StemCache>)>> =
            std::sync::Mutex::new(Vec::new());
        let mut caches = CACHES.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((_, c)) = caches.iter().find(|(l, _)| *l == language) {
            return c.clone();
        }
        let c = Arc::new(StemCache::new());
        caches.push((language, c.clone()));
        c
    }

    /// The hash that places `word` in a stem memory (this one and a [`LocalStems`]).
    fn hash(word: &str) -> u64 {
        use std::hash::BuildHasher;
        // Fx, mixed once more: its last input lands mostly in the high bits.
        rustc_hash::FxBuildHasher
            .hash_one(word)
            .wrapping_mul(0x9E37_79B9_7F4A_7C15)
    }

    /// The part and the place in it of the slot of a word of hash `h`.
    fn place(h: u64) -> (usize, usize) {
        let slot = (h >> 32) as usize % STEM_SLOTS;
        (slot % STEM_STRIPES, slot / STEM_STRIPES)
    }

    /// A copy of the slot remembering `word` (of hash `h`), if there is one.
    fn slot_of(&self, word: &str, h: u64) -> Option<StemSlot> {
        let (stripe, at) = Self::place(h);
        let slots = self.stripes[stripe]
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        slots
            .get(at)
            .filter(|s| s.stem_of(word.as_bytes()).is_some())
            .copied()
    }

    /// Replaces `word` by its stem if remembered; false if not.
    #[cfg(test)]
    fn stem_in_place(&self, word: &mut String) -> bool {
        self.slot_of(word, Self::hash(word))
            .is_some_and(|slot| slot.apply(word))
    }

    /// Remembers `word` → `stem`, if they fit a slot.
    #[cfg(test)]
    fn remember_word(&self, word: &str, stem: &str) {
        if let Some(slot) = StemSlot::new(word, stem) {
            self.remember(slot, Self::hash(word));
        }
    }

    fn remember(&self, slot: StemSlot, h: u64) {
        let (stripe, at) = Self::place(h);
        let mut slots = self.stripes[stripe]
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if let Some(s) = slots.get_mut(at) {
            *s = slot;
        }
    }
}

/// The Snowball stemmer of `language`, remembering the stems it gave: the words of a
/// federation's records repeat, and stemming a Russian word costs far more than looking it up.
/// Gives exactly what [`tantivy::tokenizer::Stemmer`] gives.
#[derive(Clone)]
pub(crate) struct CachedStemmer {
    language: Language,
}

impl CachedStemmer {
    pub(crate) fn new(language: Language) -> CachedStemmer {
        CachedStemmer { language }
    }
}

impl TokenFilter for CachedStemmer {
    type Tokenizer<T: Tokenizer> = CachedStemmerFilter<T>;

    fn transform<T: Tokenizer>(self, tokenizer: T) -> CachedStemmerFilter<T> {
        CachedStemmerFilter {
            cache: StemCache::of(self.language),
            local: LocalStems::default(),
            stemmer: TextAnalyzer::builder(RawTokenizer::default())
                .filter(Stemmer::new(self.language))
                .build(),
            inner: tokenizer,
        }
    }
}

/// The stems the most frequent words of one copy of an analyser were given, in front of the
/// shared [`StemCache`]: direct-mapped, without a lock, small enough to stay in the core's own
/// cache. Tantivy gives each segment it writes its own copy of every field's analyser, which
/// stems hundreds of thousands of tokens in a bulk ingest, most of them the same few thousand
/// words; each went to the shared memory (a lock and a read from a table of 2 MiB).
#[derive(Default)]
struct LocalStems {
    /// Tokens stemmed before the slots were made (see [`LOCAL_STEMS_AFTER`]).
    seen: u32,
    slots: Vec<StemSlot>,
}

impl LocalStems {
    /// The slot for a word of hash `h`, once this copy has stemmed enough tokens to want one.
    fn slot(&mut self, h: u64) -> Option<&mut StemSlot> {
        if self.slots.is_empty() {
            if self.seen < LOCAL_STEMS_AFTER {
                self.seen += 1;
                return None;
            }
            self.slots = vec![StemSlot::EMPTY; LOCAL_STEM_SLOTS];
        }
        // The low bits: the shared memory places by the high ones.
        self.slots.get_mut(h as usize % LOCAL_STEM_SLOTS)
    }
}

/// A copy starts with an empty memory of its own (the registered analyser is copied for every
/// segment and every query).
impl Clone for LocalStems {
    fn clone(&self) -> LocalStems {
        LocalStems::default()
    }
}

/// A tokenizer followed by [`CachedStemmer`].
#[derive(Clone)]
pub(crate) struct CachedStemmerFilter<T> {
    cache: Arc<StemCache>,
    local: LocalStems,
    /// The word as one token, stemmed: asked on a cache miss.
    stemmer: TextAnalyzer,
    inner: T,
}

impl<T: Tokenizer> Tokenizer for CachedStemmerFilter<T> {
    type TokenStream<'a> = CachedStemmerStream<'a, T::TokenStream<'a>>;

    fn token_stream<'a>(&'a mut self, text: &'a str) -> Self::TokenStream<'a> {
        CachedStemmerStream {
            tail: self.inner.token_stream(text),
            cache: &self.cache,
            local: &mut self.local,
            stemmer: &mut self.stemmer,
        }
    }
}

/// The tokens of [`CachedStemmerFilter`].
pub(crate) struct CachedStemmerStream<'a, T> {
    tail: T,
    cache: &'a StemCache,
    local: &'a mut LocalStems,
    stemmer: &'a mut TextAnalyzer,
}

impl<T: TokenStream> TokenStream for CachedStemmerStream<'_, T> {
    fn advance(&mut self) -> bool {
        if !self.tail.advance() {
            return false;
        }
        let token = self.tail.token_mut();
        if token.text.len() <= 4 && token.text.chars().count() <= 2 {
            // A word of one or two letters is kept as written: an abbreviation ("ИИ", "ИТ",
            // "AI") the stemmer would cut to a letter, the same term as a conjunction ("и").
            return true;
        }
        if token.text.bytes().all(|b| b.is_ascii_digit()) {
            // A number (a year, a law's number) is its own stem in every language: no suffix
            // is made of digits. Numbers are the words that repeat least; remembered, they
            // only pushed words out of the memories.
            return true;
        }
        let h = StemCache::hash(&token.text);
        let local = self.local.slot(h);
        if let Some(slot) = local.as_deref()
            && slot.apply(&mut token.text)
        {
            return true;
        }
        let slot = match self.cache.slot_of(&token.text, h) {
            Some(slot) => slot,
            None => {
                let stem = {
                    let mut ts = self.stemmer.token_stream(&token.text);
                    if !ts.advance() {
                        return true;
                    }
                    ts.token().text.clone()
                };
                let Some(slot) = StemSlot::new(&token.text, &stem) else {
                    // Too long to remember.
                    token.text = stem;
                    return true;
                };
                self.cache.remember(slot, h);
                slot
            }
        };
        if let Some(l) = local {
            *l = slot;
        }
        slot.apply(&mut token.text);
        true
    }

    fn token(&self) -> &Token {
        self.tail.token()
    }

    fn token_mut(&mut self) -> &mut Token {
        self.tail.token_mut()
    }
}

/// Words a query may contain that need not appear in a match (function words of Russian,
/// English and the members' languages): "digital literacy for pensioners" finds a text without
/// "for", «цифрлық сауаттылық және зейнеткерлер» one without «және».
pub fn is_stop_word(folded: &str) -> bool {
    // Folded as a query word is (ә → а, ү → у, і → и, ə → e, ü → u, ç → c, ı → i …), so
    // each is written as folding makes it. A word that is also a Russian or English content
    // word, or another member language's content word once folded, is left out: Tajik «дар»
    // (Russian "gift"), Belarusian «ад» ("hell"), «да», «па», Tajik «аз», Kyrgyz «жана» (the
    // Kazakh «жаңа», "new"), Belarusian «з» (the «з» of Russian «з/п»), Romanian «și» ("SI"),
    // «care» ("care").
    const MEMBERS: &[&str] = &[
        // Kazakh: және, мен/бен/пен, үшін, туралы, бойынша, немесе.
        "жане",
        "мен",
        "бен",
        "пен",
        "ушин",
        "туралы",
        "бойынша",
        "немесе",
        // Kyrgyz: менен, үчүн, боюнча.
        "менен",
        "учун",
        "боюнча",
        // Uzbek, Latin and Cyrillic (учун is the Kyrgyz one): va, uchun, bilan, haqida, yoki,
        // билан, ҳақида.
        "va",
        "uchun",
        "bilan",
        "haqida",
        "yoki",
        "билан",
        "хакида",
        // Azerbaijani: və, üçün, ilə, haqqında.
        "ve",
        "ucun",
        "ile",
        "haqqinda",
        // Turkmen: we, üçin, bilen.
        "we",
        "ucin",
        "bilen",
        // Tajik: ва, барои, бо.
        "ва",
        "барои",
        "бо",
        // Belarusian (і is и, у and на are Russian's): ці, аб, або, пра.
        "ци",
        "аб",
        "або",
        "пра",
        // Armenian: և (folded to եւ; capitals write ԵՎ), ու, կամ, համար, մասին.
        "եւ",
        "եվ",
        "ու",
        "կամ",
        "համար",
        "մասին",
        // Romanian: pentru, sau, privind.
        "pentru",
        "sau",
        "privind",
    ];
    is_russian_or_english_stop_word(folded) || MEMBERS.contains(&folded)
}

/// [`is_stop_word`] for the two languages Accord stems, whose stemmers can cut a mistyped
/// word down to one of these (see `plan::collapsed`).
pub(crate) fn is_russian_or_english_stop_word(folded: &str) -> bool {
    const STOP: &[&str] = &[
        // English
        "a", "an", "and", "are", "as", "at", "be", "by", "for", "from", "in", "into", "is", "it",
        "of", "on", "or", "the", "to", "with", "about", "how", "what", "which", "its", "their",
        // Russian (folded: ё → е)
        "а", "без", "в", "во", "для", "до", "и", "из", "или", "к", "как", "ко", "на", "над", "не",
        "о", "об", "от", "по", "под", "при", "про", "с", "со", "у", "что", "это", "его", "ее",
        "их", "же", "ли", "то", "за",
    ];
    STOP.contains(&folded)
}

/// The least letters of a query word whose other forms are searched in the fields of the
/// languages Accord does not stem ([`inflection_base`]), and the least its base keeps once
/// its endings are cut. Four would keep more bases («жүйе» of «жүйелер»), but a base of four
/// letters begins too many other words of an agglutinative language: «қала» (city) begins
/// «қалай» (how) and «қалау» (wish), «ауыл» (village) «ауылшаруашылығы» (agriculture), Uzbek
/// "bosh" (head) "boshqa" (other) and "boshqarma" (administration).
pub(crate) const MIN_INFLECTED_CHARS: usize = 5;

/// Endings of two letters or more cut from a query word of the members' Turkic languages
/// (Kazakh, Kyrgyz, Uzbek, Azerbaijani, Turkmen) before the forms of its base are searched
/// ([`inflection_base`]): plural, genitive, dative, locative, ablative and accusative, and the
/// third person's possessive. Written folded, as [`fold_word`] makes them (і → и, ң → н,
/// ғ → г, қ → к, ө → о, ү → у; ı → i, ü → u, ə → e, ň → n), so that one ending serves several
/// spellings: the Kazakh «нің» and the Kyrgyz «нин» are both "нин", the Azerbaijani "nın" and
/// "nin" both "nin". A short list on purpose: query words are
/// mostly in the nominative, the plural or a genitive-possessive pair («мемлекеттік
/// қызметтер», «білім беру бағдарламасы»), and the forms a record writes are reached from the
/// base as beginnings, whatever their endings. Not listed: the instrumental «мен/бен/пен»,
/// which is also a separate word (as Uzbek "bilan" is), and endings of one letter
/// ([`TURKIC_VOWEL_ENDINGS`]).
const TURKIC_ENDINGS: &[&str] = &[
    // Kazakh and Kyrgyz, Cyrillic. Plural (Kyrgyz лор/лөр, дор/дөр, тор/төр too).
    "лар", "лер", "дар", "дер", "тар", "тер", "лор", "дор", "тор",
    // Genitive: ның/нің, дың/дің, тың/тің (Kyrgyz нун/нүн, дун/дүн, тун/түн).
    "нын", "нин", "дын", "дин", "тын", "тин", "нун", "дун", "тун",
    // Dative: ға/ге, қа/ке, на/не after a possessive (Kyrgyz го/гө, ко/кө).
    "га", "ге", "ка", "ке", "на", "не", "го", "ко",
    // Locative: да/де, та/те, нда/нде after a possessive (Kyrgyz до/дө, то/тө).
    "да", "де", "та", "те", "нда", "нде", "до", "то",
    // Ablative: дан/ден, тан/тен, нан/нен (Kyrgyz дон/дөн, тон/төн, нон/нөн).
    "дан", "ден", "тан", "тен", "нан", "нен", "дон", "тон", "нон",
    // Accusative: ды/ді, ты/ті, ны/ні, and ын/ін after a possessive («қызметін»). Not the
    // Kyrgyz ду/ту/ну, nor the possessive су: Kazakh verbal nouns end so («көрсету», "to
    // show", would lose its stem's last letter).
    "ды", "ди", "ты", "ти", "ны", "ни", "ын", "ин",
    // Third person's possessive after a vowel: сы/сі.
    "сы", "си", // Uzbek, Azerbaijani and Turkmen, Latin. Plural: lar, lər, ler.
    "lar", "ler",
    // Genitive: Uzbek ning; Azerbaijani nın/nin/nun/nün, ın/in/un/ün; Turkmen nyň/niň, yň/iň.
    "ning", "nin", "nun", "nyn", "in", "un", "yn",
    // Dative: Uzbek ga/ka/qa; Azerbaijani ya/yə; Turkmen ga/ge, na/ne after a possessive.
    "ga", "ge", "ka", "qa", "ya", "ye", "na", "ne",
    // Locative: da/də, ta/tə; Turkmen nda/nde after a possessive.
    "da", "de", "ta", "te", "nda", "nde",
    // Ablative: dan/dən, tan/tən; Turkmen ndan/nden after a possessive.
    "dan", "den", "tan", "ten", "ndan", "nden",
    // Accusative: Uzbek ni; Azerbaijani nı/ni, nu/nü; Turkmen ny/ni.
    "ni", "nu", "ny",
    // Third person's possessive after a vowel: Uzbek si; Azerbaijani sı/si, su/sü; Turkmen sy/si.
    "si", "su", "sy",
];

/// Endings of one letter: the third person's possessive after a consonant (Kazakh ы/і, Uzbek
/// and Azerbaijani i/ı, Turkmen y/i). Cut only with an ending of [`TURKIC_ENDINGS`] before or
/// after it («қызметтері» → «қызметтер» → «қызмет», «мектептерінде» → «мектептері» →
/// «мектептер»):
/// alone, a final vowel ends too many words that are no possessive (Russian «информации»,
/// Uzbek "tizimi" and "hokimi" alike).
const TURKIC_VOWEL_ENDINGS: &[char] = &['ы', 'и', 'i', 'y'];

/// `word` less its longest ending of [`TURKIC_ENDINGS`] that leaves [`MIN_INFLECTED_CHARS`]
/// letters, if one does.
fn cut_ending(word: &str) -> Option<&str> {
    TURKIC_ENDINGS
        .iter()
        .filter_map(|e| word.strip_suffix(*e))
        .filter(|rest| rest.chars().count() >= MIN_INFLECTED_CHARS)
        .min_by_key(|rest| rest.len())
}

/// `word` less a final vowel of [`TURKIC_VOWEL_ENDINGS`], if [`MIN_INFLECTED_CHARS`] letters
/// remain.
fn cut_vowel(word: &str) -> Option<&str> {
    let rest = word.strip_suffix(|c: char| TURKIC_VOWEL_ENDINGS.contains(&c))?;
    (rest.chars().count() >= MIN_INFLECTED_CHARS).then_some(rest)
}

/// The base whose forms a query word (folded, as [`fold_word`] makes it) is also searched by
/// in the fields of the languages Accord does not stem (light inflection, at query time):
/// the word less at most two endings of the members' Turkic languages, longest first
/// («қызметтерді» → «қызметтер» → «қызмет», «бағдарламалар» → «бағдарлама»,
/// "xizmatlari" → "xizmatlar" → "xizmat"), or the word itself when none is cut (an Armenian
/// or Belarusian word, a Kazakh «мемлекеттік»). `None` for a function word, a word of fewer
/// than [`MIN_INFLECTED_CHARS`] letters, and a word with a digit (numbers match as written).
pub(crate) fn inflection_base(folded: &str) -> Option<String> {
    if folded.chars().count() < MIN_INFLECTED_CHARS
        || !folded.chars().all(char::is_alphabetic)
        || is_stop_word(folded)
    {
        return None;
    }
    let base = match cut_ending(folded) {
        Some(rest) => cut_ending(rest).or_else(|| cut_vowel(rest)).unwrap_or(rest),
        None => cut_vowel(folded).and_then(cut_ending).unwrap_or(folded),
    };
    Some(base.to_string())
}

/// Markdown as plain text: the words a reader sees, without markup, one line per block.
pub fn markdown_to_plain(md: &str) -> String {
    use pulldown_cmark::{Event, Parser, TagEnd};
    let mut out = String::with_capacity(md.len());
    for event in Parser::new(md) {
        match event {
            Event::Text(t) | Event::Code(t) => out.push_str(&t),
            Event::SoftBreak => out.push(' '),
            Event::HardBreak => out.push('\n'),
            Event::End(
                TagEnd::Paragraph
                | TagEnd::Heading(_)
                | TagEnd::Item
                | TagEnd::CodeBlock
                | TagEnd::TableRow
                | TagEnd::BlockQuote(_),
            ) if !out.ends_with('\n') => out.push('\n'),
            Event::End(TagEnd::TableCell) => out.push(' '),
            _ => {}
        }
    }
    out.trim().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens(text: &str) -> Vec<(usize, String)> {
        let mut t = FoldingTokenizer::default();
        let mut s = t.token_stream(text);
        let mut out = Vec::new();
        while s.advance() {
            out.push((s.token().position, s.token().text.clone()));
        }
        out
    }

    /// Every token of `text` as `(from, to, position, text)`.
    fn all_tokens(t: &mut FoldingTokenizer, text: &str) -> Vec<(usize, usize, usize, String)> {
        let mut ts = t.token_stream(text);
        let mut out = Vec::new();
        while ts.advance() {
            let k = ts.token();
            out.push((k.offset_from, k.offset_to, k.position, k.text.clone()));
        }
        out
    }

    /// What the tokenizer must give for `split` (the [`words`] of a text): each word folded
    /// and, when folding changed it, as written beside.
    fn split_then_folded(split: Vec<(usize, usize, String)>) -> Vec<(usize, usize, usize, String)> {
        let mut expected = Vec::new();
        for (position, (from, to, lower)) in split.into_iter().enumerate() {
            let folded = fold_word(&lower);
            let exact = folded != lower;
            expected.push((from, to, position, folded));
            if exact {
                expected.push((from, to, position, lower));
            }
        }
        expected
    }

    #[test]
    fn members_letters_fold_and_the_exact_form_is_kept_beside_them() {
        assert_eq!(
            tokens("Өскемен, Түндүк ёлка"),
            vec![
                (0, "оскемен".into()),
                (0, "өскемен".into()),
                (1, "тундук".into()),
                (1, "түндүк".into()),
                (2, "елка".into()),
                (2, "ёлка".into()),
            ]
        );
        assert_eq!(
            tokens("Магілёў"),
            vec![(0, "магилеу".into()), (0, "магілёў".into())]
        );
        assert_eq!(
            tokens("plain words"),
            vec![(0, "plain".into()), (1, "words".into())]
        );
    }

    /// Tajik letters fold as the other members' do; a Turkish İ lower-cased leaves no dot; a
    /// word mixing Latin and Cyrillic letters reads the look-alikes of its fewer script as
    /// letters of the other.
    #[test]
    fn tajik_letters_dotted_i_and_look_alikes_fold() {
        assert_eq!(tokens("Ҳукумати электронӣ")[0].1, "хукумати");
        assert_eq!(tokens("Ҳукумати электронӣ")[2].1, "электрони");
        assert_eq!(tokens("İnformasiya")[0].1, "informasiya");
        // Latin E and A, Cyrillic Э and С: the same folded word as all Cyrillic.
        assert_eq!(tokens("EAЭС")[0], tokens("ЕАЭС")[0]);
        assert_eq!(tokens("ЦOД")[0], tokens("ЦОД")[0]);
        assert_eq!(fold_word("cнг"), "снг");
        assert_eq!(fold_word("пoдпись"), "подпись");
        // A word mostly Latin, its Cyrillic letters look-alikes of Latin ones, reads as Latin:
        // "dаta" with a Cyrillic а, "ICТ" with a Cyrillic Т; a tie reads as Cyrillic ("EС" is
        // «ЕС»).
        assert_eq!(tokens("dаta")[0], tokens("data")[0]);
        assert_eq!(fold_word("signаtures"), "signatures");
        assert_eq!(tokens("ICТ")[0], tokens("ICT")[0]);
        assert_eq!(fold_word("eс"), "ес");
        assert_eq!(fold_word("рublic"), "public");
        // A Cyrillic letter with no Latin look-alike keeps the word read as Cyrillic.
        assert_eq!(fold_word("dжata"), "dжата");
        // A Latin word keeps its letters.
        assert_eq!(tokens("Copy"), vec![(0, "copy".into())]);
    }

    /// The Azerbaijani ə and the Kazakh ә look alike: typed in a word of the other script, each
    /// reads as that script's letter, so "Azәrbaycan" with a Cyrillic ә is "Azərbaycan" and
    /// «мəселе» with a Latin ə is «мәселе». Latin letters with diacritics count as Latin.
    #[test]
    fn latin_and_cyrillic_schwa_are_look_alikes() {
        assert_eq!(fold_word("azərbaycan"), "azerbaycan");
        assert_eq!(fold_word("azәrbaycan"), "azerbaycan");
        assert_eq!(tokens("Azәrbaycan")[0], tokens("Azərbaycan")[0]);
        assert_eq!(fold_word("мәселе"), "маселе");
        assert_eq!(fold_word("мəселе"), "маселе");
        assert_eq!(tokens("Мəселе")[0], tokens("Мәселе")[0]);
        // Three Latin letters, two of them with diacritics, and a Cyrillic і: Latin.
        assert_eq!(fold_word("üçіn"), "ucin");
        // Words of one script fold as before.
        assert_eq!(fold_word("әлем"), "алем");
        assert_eq!(fold_word("şəhər"), "seher");
    }

    /// Kazakh Latin of 2018 and Karakalpak write ǵ where others write ğ: both fold to g,
    /// composed or not.
    #[test]
    fn g_with_acute_folds_as_g_with_breve() {
        assert_eq!(fold_word("ǵarezsizlik"), "garezsizlik");
        assert_eq!(tokens("Ǵarezsizlik")[0].1, "garezsizlik");
        assert_eq!(tokens("G\u{0301}arezsizlik")[0].1, "garezsizlik");
        assert_eq!(fold_word("ğ"), fold_word("ǵ"));
    }

    /// The Armenian ligature և is the two letters it joins, so «Երևան» and «Երեւան» meet (the
    /// form as written kept beside); the emphasis, exclamation and question marks written
    /// inside a word keep it whole and are dropped, as a soft hyphen is.
    #[test]
    fn armenian_ligature_and_marks_inside_a_word_read_as_the_plain_word() {
        assert_eq!(
            tokens("Երևան"),
            vec![(0, "երեւան".into()), (0, "երևան".into())]
        );
        assert_eq!(tokens("Երեւան"), vec![(0, "երեւան".into())]);
        assert_eq!(fold_word("և"), "եւ");
        // The ligature's capitals, and its spelling with վ, meet it too.
        assert_eq!(fold_word("երեվան"), fold_word("երևան"));
        assert_eq!(tokens("ԵՐԵՎԱՆ")[0], tokens("Երևան")[0]);
        for marked in ["Ինչպե՞ս", "Ինչպե՛ս", "Ինչպե՜ս"] {
            assert_eq!(tokens(marked), vec![(0, "ինչպես".into())], "{marked}");
            assert_eq!(
                words(marked),
                vec![(0, marked.len(), "ինչպես".to_string())],
                "{marked}"
            );
        }
        // A mark outside a word starts none.
        assert_eq!(tokens("՞ ինչ"), vec![(0, "ինչ".into())]);
    }

    /// Function words of the members' languages need not be found, as Russian and English ones
    /// need not, in whatever letters they are typed; words that are content words of Russian,
    /// English or, folded, another member's language are not among them.
    #[test]
    fn members_function_words_are_stop_words_and_content_words_are_not() {
        for w in [
            "және",
            "мен",
            "бен",
            "пен",
            "үшін",
            "туралы",
            "бойынша",
            "немесе",
            "менен",
            "үчүн",
            "боюнча",
            "va",
            "uchun",
            "bilan",
            "haqida",
            "yoki",
            "билан",
            "ҳақида",
            "və",
            "ve",
            "üçün",
            "ilə",
            "haqqında",
            "we",
            "üçin",
            "bilen",
            "ва",
            "барои",
            "бо",
            "ці",
            "аб",
            "або",
            "пра",
            "և",
            "եւ",
            "ԵՎ",
            "ու",
            "կամ",
            "համար",
            "մասին",
            "pentru",
            "sau",
            "privind",
        ] {
            assert!(is_stop_word(&fold_word(&lowercase(w))), "{w}");
        }
        for w in [
            "дар",
            "ад",
            "да",
            "аз",
            "па",
            "жаңа",
            "жана",
            "з",
            "si",
            "care",
            "digital",
            "цифровой",
        ] {
            assert!(!is_stop_word(&fold_word(&lowercase(w))), "{w}");
        }
        // A mistyped word's stem collapses to the stemmed languages' function words only: the
        // Russian stem of «боями» is «бо», no Tajik preposition.
        assert!(is_russian_or_english_stop_word("об"));
        assert!(!is_russian_or_english_stop_word("бо"));
    }

    /// Text decomposed (NFD, as PDFs and some keyboards write it) or hyphenated for print reads
    /// as the same words as composed, unbroken text: one word each, not two pieces.
    #[test]
    fn decomposed_and_soft_hyphenated_words_read_as_typed() {
        use unicode_normalization::UnicodeNormalization;
        for text in [
            "Район Ёлка, Қазақстан, Oʻzbekiston, café société",
            "ЙОД и «Ёж», Ўзбекистон, Україна",
        ] {
            let nfd: String = text.nfd().collect();
            assert_ne!(nfd, text);
            assert_eq!(tokens(&nfd), tokens(text), "{nfd:?}");
            assert_eq!(
                words(&nfd).into_iter().map(|w| w.2).collect::<Vec<_>>(),
                words(text).into_iter().map(|w| w.2).collect::<Vec<_>>()
            );
        }
        assert_eq!(
            tokens("инфор\u{00AD}мация ци\u{200D}фра"),
            tokens("информация цифра").into_iter().collect::<Vec<_>>()
        );
        // A mark with no letter before it starts no word.
        assert_eq!(tokens(" \u{0301} \u{00AD} да"), vec![(0, "да".into())]);
    }

    #[test]
    fn the_fast_paths_agree_with_the_unicode_tables() {
        for c in (0u32..0x3000).filter_map(char::from_u32) {
            assert_eq!(is_word_char(c), c.is_alphanumeric(), "{c:?}");
            let w = c.to_string();
            if is_invisible_joiner(c) {
                // Dropped: no word starts with one, and inside a word it is not read.
                assert_eq!(lowercase(&w), "");
                continue;
            }
            if joins_word(c) {
                // Composed first, as no word starts with it anyway.
                use unicode_normalization::UnicodeNormalization;
                assert_eq!(lowercase(&w), w.nfc().collect::<String>().to_lowercase());
                continue;
            }
            assert_eq!(lowercase(&w), w.to_lowercase(), "{c:?}");
            let lower = lowercase(&w);
            if folds_to_itself(&lower) {
                assert_eq!(fold_word(&lower), lower, "{c:?}");
            }
        }
        for w in [
            "ΟΔΟΣ",
            "Straße",
            "ÉCOLE",
            "Ёлка",
            "ЎЗБЕКИСТОН",
            "Ѐѝ",
            "İstanbul",
            "ABC123",
        ] {
            assert_eq!(lowercase(w), w.to_lowercase(), "{w}");
        }
    }

    #[test]
    fn stems_come_from_the_cache_as_the_stemmer_gives_them() {
        use tantivy::tokenizer::{Language, Stemmer, TextAnalyzer, TokenStream};
        let words = "управления услуг цифровых государственных services governments digital                      услуг services управления";
        let plain = |mut a: TextAnalyzer| {
            let mut out = Vec::new();
            let mut ts = a.token_stream(words);
            while ts.advance() {
                out.push(ts.token().text.clone());
            }
            out
        };
        for lang in [Language::Russian, Language::English] {
            let stemmed = plain(
                TextAnalyzer::builder(FoldingTokenizer::default())
                    .filter(Stemmer::new(lang))
                    .build(),
            );
            // Twice: the second time every stem comes from the cache.
            for _ in 0..2 {
                let cached = plain(
                    TextAnalyzer::builder(FoldingTokenizer::default())
                        .filter(CachedStemmer::new(lang))
                        .build(),
                );
                assert_eq!(cached, stemmed, "{lang:?}");
            }
        }
    }

    /// The stemmer is skipped for numbers: the Snowball stemmers give every number back as it
    /// is, and the cached stemmer gives what they give on text mixing numbers and words.
    #[test]
    fn numbers_are_their_own_stems() {
        use tantivy::tokenizer::{Language, Stemmer, TextAnalyzer, TokenStream};
        let mut numbers: Vec<String> = (0..=12_000).map(|n| n.to_string()).collect();
        numbers.extend(
            [
                "0000",
                "007",
                "2026",
                "31122025",
                "123456789012345678901234567890",
            ]
            .map(String::from),
        );
        let all = |a: &mut TextAnalyzer, text: &str| {
            let mut ts = a.token_stream(text);
            let mut out = Vec::new();
            while ts.advance() {
                out.push(ts.token().text.clone());
            }
            out
        };
        for lang in [Language::Russian, Language::English] {
            let mut snowball = TextAnalyzer::builder(FoldingTokenizer::default())
                .filter(Stemmer::new(lang))
                .build();
            let text = numbers.join(" ");
            assert_eq!(all(&mut snowball, &text), numbers, "{lang:?}");
            let mixed = "закон 152 от 2006 года о персональных данных, act 2018 of 25 May";
            let mut cached = TextAnalyzer::builder(FoldingTokenizer::default())
                .filter(CachedStemmer::new(lang))
                .build();
            assert_eq!(
                all(&mut cached, mixed),
                all(&mut snowball, mixed),
                "{lang:?}"
            );
        }
    }

    #[test]
    fn a_reused_tokenizer_gives_what_a_fresh_one_gives() {
        let texts = [
            "Цифровая трансформация: Өскемен, Oʻzbekiston and ÉTAT numérique 2030",
            "short",
            "",
            "ёлка Ёлка ELKA ministry's",
            "Одно",
        ];
        let all = all_tokens;
        let mut reused = FoldingTokenizer::default();
        for text in texts.iter().chain(texts.iter().rev()) {
            let fresh = all(&mut FoldingTokenizer::default(), text);
            assert_eq!(all(&mut reused, text), fresh, "{text}");
        }
        assert!(all(&mut reused, "").is_empty());
    }

    /// The tokenizer reads each text once; it must give exactly what splitting into
    /// [`words`], then folding each, gives — whatever the letters.
    #[test]
    fn the_one_pass_tokenizer_gives_the_split_words_folded() {
        let texts = [
            "Цифровые УСЛУГИ для граждан: Ёлка, ЁЖ и ёж",
            "Өскемен Қазақстан ҚАЗАҚСТАН ұлттық Ўзбекистон Ѓ Ѐ Џ",
            "O'zbekiston Oʻzbekiston ministry's 'quoted' rock'n'roll end' 'start",
            "ΟΔΥΣΣΕΥΣ Σίσυφος ΣΑΣ İstanbul İİ Straße ǅemal",
            "x1 2026 ID-42 e-government données café Ærø ŞİŞLİ",
            "mixed ЦифроваяLatin123 слово`с’апостроф a''b a'-b",
            "",
            "   ",
            "'",
            "ä",
        ];
        let mut t = FoldingTokenizer::default();
        for text in texts {
            let expected = split_then_folded(words(text));
            assert_eq!(all_tokens(&mut t, text), expected, "{text}");
        }
    }

    /// Texts drawn with a fixed seed from characters where the readings differ: ASCII letters,
    /// digits and punctuation, every apostrophe, Russian and the members' Cyrillic letters in
    /// both cases (the byte fast path's edges U+03FF–U+0483 among them), Latin with
    /// diacritics, Greek, Turkish İ, a combining mark, separators of Russian typography,
    /// Chinese and an emoji.
    fn random_texts(count: usize) -> Vec<String> {
        let pool: Vec<char> = "aZz09 .,;:-'`\u{2019}\u{2018}\u{02BB}\u{02BC}\u{00B4}\u{2032}\n\t\
             АаЯяЁёЖжЪъЀѐЏџѠѡѿҀҁ҂ЍӀӘәҚқҢңҒғҮүҰұӨөҺһІіЇїЎўЬ\
             \u{03FF}\u{0400}\u{045F}\u{0460}\u{047F}\u{0480}\u{0481}\u{0482}\u{0483}\
             éÉçßİıŞşǅΣσςΟ\u{0301}\u{0306}\u{00AD}\u{200D}«»—–\u{00A0}…№文字😀"
            .chars()
            .collect();
        let mut state: u64 = 0x2545_F491_4F6C_DD1D;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        (0..count)
            .map(|_| {
                let len = (next() % 24) as usize;
                (0..len)
                    .map(|_| pool[(next() % pool.len() as u64) as usize])
                    .collect()
            })
            .collect()
    }

    /// The definition of a word, read plainly over the characters: a letter or digit, or an
    /// apostrophe after a character of the word and before a letter or digit, or a combining
    /// mark or invisible joiner after a character of the word.
    fn reference_spans(text: &str) -> Vec<(usize, usize)> {
        let chars: Vec<(usize, char)> = text.char_indices().collect();
        let mut spans: Vec<(usize, usize)> = Vec::new();
        let mut open: Option<usize> = None;
        for (k, &(i, c)) in chars.iter().enumerate() {
            let next_is_word = chars.get(k + 1).is_some_and(|&(_, n)| n.is_alphanumeric());
            let inside = c.is_alphanumeric()
                || (open.is_some() && is_apostrophe(c) && next_is_word)
                || (open.is_some() && joins_word(c));
            match (inside, open) {
                (true, None) => open = Some(i),
                (false, Some(from)) => {
                    spans.push((from, i));
                    open = None;
                }
                _ => {}
            }
        }
        if let Some(from) = open {
            spans.push((from, text.len()));
        }
        spans
    }

    /// The byte-wise tokenizer against the plain definitions, on text where they could differ.
    #[test]
    fn words_and_tokens_on_random_text_are_the_definitions() {
        let mut t = FoldingTokenizer::default();
        for text in random_texts(20_000) {
            let split = words(&text);
            let spans: Vec<(usize, usize)> = split.iter().map(|(f, e, _)| (*f, *e)).collect();
            assert_eq!(spans, reference_spans(&text), "{text:?}");
            for (from, to, lower) in &split {
                use unicode_normalization::UnicodeNormalization;
                let word = &text[*from..*to];
                let plain: String = word.chars().filter(|c| !is_invisible_joiner(*c)).collect();
                let expected = if word.chars().any(joins_word) {
                    plain.nfc().collect::<String>().to_lowercase()
                } else {
                    word.to_lowercase()
                };
                assert_eq!(*lower, expected, "{text:?}");
            }
            assert_eq!(
                all_tokens(&mut t, &text),
                split_then_folded(split),
                "{text:?}"
            );
        }
    }

    #[test]
    fn a_stem_learnt_on_one_thread_serves_the_others() {
        use tantivy::tokenizer::{Language, TextAnalyzer, TokenStream};
        // Tantivy's indexing threads end at every commit: what one learnt must outlive it.
        let word = "межведомственного";
        std::thread::spawn(move || {
            let mut a = TextAnalyzer::builder(FoldingTokenizer::default())
                .filter(CachedStemmer::new(Language::Russian))
                .build();
            let mut ts = a.token_stream(word);
            assert!(ts.advance());
        })
        .join()
        .unwrap();
        let mut w = word.to_string();
        assert!(StemCache::of(Language::Russian).stem_in_place(&mut w));
        assert_eq!(w, "межведомствен");
        // Each language has its own memory.
        let mut w = word.to_string();
        assert!(!StemCache::of(Language::English).stem_in_place(&mut w));
        assert_eq!(w, word);
    }

    #[test]
    fn the_stem_memory_has_a_fixed_size_and_serves_the_latest_word_of_a_slot() {
        let c = StemCache::new();
        let held = |c: &StemCache| -> usize {
            c.stripes
                .iter()
                .map(|s| s.lock().unwrap().iter().filter(|x| x.word > 0).count())
                .sum()
        };
        for i in 0..3 * STEM_SLOTS {
            c.remember_word(&format!("w{i}"), &format!("s{i}"));
        }
        // Never more than its slots, and spread over them (most are taken).
        let n = held(&c);
        assert!(n <= STEM_SLOTS && n > STEM_SLOTS / 2, "{n}");
        assert!(
            c.stripes
                .iter()
                .all(|s| s.lock().unwrap().len() == STEM_SLOTS / STEM_STRIPES)
        );
        let mut w = format!("w{}", 3 * STEM_SLOTS - 1);
        assert!(c.stem_in_place(&mut w));
        assert_eq!(w, format!("s{}", 3 * STEM_SLOTS - 1));
        // Stems that are the word's beginning and stems that are not; a word too long to keep.
        c.remember_word("государственных", "государствен");
        c.remember_word("happy", "happi");
        let long = "х".repeat(40);
        c.remember_word(&long, "х");
        for (word, stem) in [("государственных", "государствен"), ("happy", "happi")]
        {
            let mut w = word.to_string();
            assert!(c.stem_in_place(&mut w), "{word}");
            assert_eq!(w, stem);
        }
        let mut w = long.clone();
        assert!(!c.stem_in_place(&mut w));
        assert_eq!(w, long);
    }

    /// A copy of an analyser that has stemmed enough to keep a memory of its own gives the same
    /// stems as the plain stemmer: for words it has seen, words it has not, words too long to
    /// remember, and words that take each other's place in its memory.
    #[test]
    fn a_copy_with_a_memory_of_its_own_stems_as_the_plain_stemmer() {
        use tantivy::tokenizer::{Language, Stemmer, TextAnalyzer, TokenStream};
        let slot = |w: &str| StemCache::hash(w) as usize % LOCAL_STEM_SLOTS;
        let first = "государственных";
        let rival = (0..10_000_000u32)
            .map(|i| format!("услугами{i}цифровых"))
            .find(|w| slot(w) == slot(first))
            .unwrap();
        let long = "ж".repeat(40);
        let words: Vec<String> = (0..3 * LOCAL_STEMS_AFTER)
            .map(|i| format!("платформами{i}"))
            .chain([first.to_string(), rival.clone(), long.clone()])
            .collect();
        let text = words.join(" ");
        let tail = format!("{first} {rival} {first} {long} {rival} {first} платформами7");
        let run = |a: &mut TextAnalyzer, text: &str| {
            let mut out = Vec::new();
            let mut ts = a.token_stream(text);
            while ts.advance() {
                out.push(ts.token().text.clone());
            }
            out
        };
        let mut plain = TextAnalyzer::builder(FoldingTokenizer::default())
            .filter(Stemmer::new(Language::Russian))
            .build();
        let mut cached = TextAnalyzer::builder(FoldingTokenizer::default())
            .filter(CachedStemmer::new(Language::Russian))
            .build();
        for _ in 0..2 {
            assert_eq!(run(&mut cached, &text), run(&mut plain, &text));
            assert_eq!(run(&mut cached, &tail), run(&mut plain, &tail));
        }
        assert_eq!(run(&mut cached, &tail)[0], "государствен");
        // A copy made now starts without a memory of its own and stems the same.
        let mut copy = cached.clone();
        assert_eq!(run(&mut copy, &tail), run(&mut plain, &tail));
    }

    /// Words a signer picked to land in one slot push each other out: each is stemmed again
    /// (as with no memory), and always right.
    #[test]
    fn colliding_words_are_stemmed_right_every_time() {
        use tantivy::tokenizer::{Language, Stemmer, TextAnalyzer, TokenStream};
        let base = "цифровизация";
        let target = StemCache::place(StemCache::hash(base));
        let rival = (0..10_000_000u32)
            .map(|i| format!("цифровых{i}услуг"))
            .find(|w| StemCache::place(StemCache::hash(w)) == target)
            .unwrap();
        let text = format!("{base} {rival} {base} {rival} {base}");
        let run = |mut a: TextAnalyzer| {
            let mut out = Vec::new();
            let mut ts = a.token_stream(&text);
            while ts.advance() {
                out.push(ts.token().text.clone());
            }
            out
        };
        let plain = run(TextAnalyzer::builder(FoldingTokenizer::default())
            .filter(Stemmer::new(Language::Russian))
            .build());
        for _ in 0..2 {
            let cached = run(TextAnalyzer::builder(FoldingTokenizer::default())
                .filter(CachedStemmer::new(Language::Russian))
                .build());
            assert_eq!(cached, plain);
        }
        // The slot holds the last of the two; the other was pushed out.
        let cache = StemCache::of(Language::Russian);
        let (mut last, mut pushed_out) = (base.to_string(), rival.clone());
        assert!(cache.stem_in_place(&mut last));
        assert!(!cache.stem_in_place(&mut pushed_out));
    }

    #[test]
    fn apostrophe_variants_meet() {
        for w in [
            "Oʻzbekiston",
            "O'zbekiston",
            "O‘zbekiston",
            "O`zbekiston",
            "Ozbekiston",
        ] {
            assert_eq!(tokens(w)[0], (0, "ozbekiston".to_string()), "{w}");
        }
        // An apostrophe with no letter after it ends the word.
        assert_eq!(tokens("states' rules")[0].1, "states");
    }

    #[test]
    fn markdown_becomes_the_text_a_reader_sees() {
        let plain = markdown_to_plain(
            "## Что меняется\n\nС 1 марта **услуги** `проактивны`.\n\n- один;\n- два\n",
        );
        assert_eq!(
            plain,
            "Что меняется\nС 1 марта услуги проактивны.\nодин;\nдва"
        );
    }
}
