//! `accord-search` owns the full-text index of records: a tantivy index derived from the store
//! (it can always be rebuilt from it). Text goes to a field per analyser: Russian (`ru`, Snowball
//! Russian stemmer), English (`en`, Snowball English stemmer) and every other language tag
//! (lower-cased words, no stemming, so `kk`, `hy`, `be`, `uz`… match exact words, and a query
//! word the forms of its base: `analysis::inflection_base`). Facets: member,
//! kind, direction, language, status, publisher, year; `created` is a fast field for ranges and
//! sorting. Each record's document is stored for its hits; a node keeps the long texts (body,
//! attachments' text) out of it and gives searchers a [`TextSource`] that reads them from its
//! store.

#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

pub mod analysis;
mod collect;
pub mod extract;
pub mod glossary;
pub mod sandbox;

pub use collect::CacheStats;
mod plan;
pub use plan::query_lang;

use std::collections::BTreeMap;
use std::ops::Bound;
use std::path::Path;
use std::sync::Arc;

use accord_core::{ObjectId, Record, Timestamp};
use serde::{Deserialize, Serialize};
use tantivy::collector::Count;
use tantivy::query::{AllQuery, BooleanQuery, EmptyQuery, Occur, Query, RangeQuery, TermQuery};
use tantivy::schema::{
    FAST, Facet, FacetOptions, Field, INDEXED, IndexRecordOption, STORED, STRING, Schema,
    TextFieldIndexing, TextOptions, Value,
};
use tantivy::snippet::SnippetGenerator;
use tantivy::tokenizer::{Language, RemoveLongFilter, TextAnalyzer};
use tantivy::{Index, IndexReader, IndexWriter, ReloadPolicy, TantivyDocument, Term};
use thiserror::Error;

pub use glossary::{DirectionNames, Glossary};

/// Longest query text accepted.
pub const MAX_QUERY_CHARS: usize = 512;
/// Words of this many bytes or more (32 Cyrillic letters, 64 Latin) are not indexed: a hash or
/// an id is no word to search for.
pub const MAX_TERM_BYTES: usize = 64;
/// The version of how text becomes terms ([`analysis`]), written with every commit: an index
/// written by another version is rebuilt when the node opens it, since its terms would no
/// longer meet the queries'. 2: decomposed text is composed, and soft hyphens and zero-width
/// joiners keep a word whole. 3: words of one or two letters are not stemmed, Tajik letters
/// fold, combining marks left after composition are dropped from the folded form, and Latin
/// look-alikes in a word mixing scripts read as Cyrillic. 4: a language tag picks its family
/// whatever its case ("RU" is Russian, as BCP 47 says). 5: tags are indexed whole too
/// ([`tag_key`]), for the tag filter ([`SearchQuery::tags`]). 6: tags are case folded, and
/// ligatures and full-width forms read plain ("Straße" is "strasse", "ﬁ" is "fi", "ё" is "е").
/// 7: a title's line breaks read as spaces (its words ran together), noncharacters are taken
/// out of titles, tags and publishers' names, and publishers' names are cleaned as shown.
/// 8: a word mixing scripts whose Cyrillic letters are fewer and all look like Latin ones
/// reads as Latin ("dаta" with a Cyrillic а is "data").
/// 9: the Armenian ligature և (and ե followed by վ) folds to the two letters ե and ւ, and the Armenian emphasis,
/// exclamation and question marks keep a word whole and are dropped («Ինչպե՞ս» is one word);
/// ǵ folds to g; in a word mixing scripts, Latin letters with diacritics count as Latin, and the
/// Latin ə and the Cyrillic ә are look-alikes ("Azәrbaycan" with a Cyrillic ә is "azerbaycan").
pub const ANALYSIS_VERSION: u32 = 9;
/// Most results per page.
pub const MAX_LIMIT: usize = 100;
/// Most hits of one page of record heads ([`SearchQuery::heads_only`]): an export's whole.
pub const MAX_HEADS_LIMIT: usize = 10_000;
/// Results a page holds unless the query says otherwise (the API's and the UI's pages).
pub const DEFAULT_LIMIT: usize = 20;
/// The deepest page a search is paged to: past it a result gives no next offset (and says so,
/// [`SearchResult::cut`]), so a cursor is never issued that the API then refuses. A client
/// that needs more narrows the query (by `since`, as `accord export` does).
pub const MAX_OFFSET: usize = 100_000;
/// Memory budget of the index writer.
const WRITER_HEAP: usize = 50 * 1024 * 1024;

/// How the index is opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexOptions {
    /// Indexing memory shared by tantivy's indexing threads (one per core, at most eight, each
    /// given at least 15 MB: fewer threads when this is small). A thread's segment ends when its
    /// share fills, so less memory means smaller segments and more merging.
    pub writer_heap_bytes: usize,
}

impl Default for IndexOptions {
    fn default() -> Self {
        IndexOptions {
            writer_heap_bytes: WRITER_HEAP,
        }
    }
}
/// Segments larger than this are not merged again, so that a merge (eight segments of one size
/// into one) never holds more than ~8 × this many documents: a merge into a segment of 820,000
/// documents took 1.8 GB for seconds (docs/BENCHMARKS.md, "At 1,000,000 records").
const MAX_DOCS_BEFORE_MERGE: usize = 25_000;
/// Segments smaller than this are one level of the merge policy (tantivy's default: 10,000).
/// A node taking gossip commits a segment of a few hundred documents every half second; with
/// one level up to 10,000 documents, the growing segment was merged again with every seven new
/// ones, each document rewritten four to five times before it left the level, and merges took a
/// fifth of five such nodes' CPU. From 2,500 documents, five nodes receiving 20,000 records
/// used 10–20 % less CPU, and the queries at 100,000 records stayed within their targets
/// (docs/BENCHMARKS.md, "One segment per commit, smaller merge levels").
const MIN_LAYER_DOCS: u32 = 2_500;
/// Longest snippet, in characters.
const SNIPPET_CHARS: usize = 220;

/// Search errors.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum SearchError {
    #[error("search index: {0}")]
    Index(#[from] tantivy::TantivyError),
    #[error("search index directory: {0}")]
    Directory(String),
    #[error("{0}")]
    BadQuery(String),
    #[error("glossary {0}")]
    Glossary(String),
}

/// What the index knows about one record (built by the node from the store).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RecordDoc {
    pub id: ObjectId,
    pub created: Timestamp,
    pub member: String,
    pub kind: String,
    pub directions: Vec<String>,
    /// The original language.
    pub lang: String,
    pub languages: Vec<String>,
    pub title: BTreeMap<String, String>,
    /// Summary per language (Markdown-free text as written).
    #[serde(default)]
    pub summary: BTreeMap<String, String>,
    /// Body per language (Markdown).
    #[serde(default)]
    pub body: BTreeMap<String, String>,
    /// Tag slugs (searchable in the original language, never shown in snippets).
    #[serde(default)]
    pub tags: Vec<String>,
    /// The source document's date, `YYYY-MM-DD`, when the record gives one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub date: Option<String>,
    pub status: String,
    pub publisher: String,
    /// Text extracted from the record's attachments (searchable; a hit shows a snippet that
    /// names the file).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attachments: Vec<AttachmentText>,
    /// The files the record attaches, held here or not: the first [`DOC_FILES`].
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<FileRef>,
    /// How many more files the record attaches than `files` lists.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub files_more: u64,
}

/// The long texts of a record: its body per language and its attachments' text. An index made
/// [`SearchIndex::without_long_texts`] indexes them but does not store them, and its hits read
/// them from a [`TextSource`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LongTexts {
    pub body: BTreeMap<String, String>,
    pub attachments: Vec<AttachmentText>,
}

/// Where hits read the long texts an index does not store (the node: its store, which holds
/// every indexed record). Asked once per hit on the page, from the thread running the query.
pub trait TextSource: Send + Sync {
    /// The long texts of record `id`, or `None` if it is not held.
    fn long_texts(&self, id: &ObjectId) -> Option<LongTexts>;
}

/// What an index made [`SearchIndex::without_long_texts`] stores of a [`RecordDoc`]: every
/// field but the body and the attachments' text, under the same names, so that it reads back
/// as a `RecordDoc` with those two empty.
#[derive(Serialize)]
struct StoredHead<'a> {
    id: &'a ObjectId,
    created: &'a Timestamp,
    member: &'a str,
    kind: &'a str,
    directions: &'a [String],
    lang: &'a str,
    languages: &'a [String],
    title: &'a BTreeMap<String, String>,
    summary: &'a BTreeMap<String, String>,
    tags: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    date: Option<&'a str>,
    status: &'a str,
    publisher: &'a str,
    #[serde(skip_serializing_if = "<[FileRef]>::is_empty")]
    files: &'a [FileRef],
    #[serde(skip_serializing_if = "is_zero")]
    files_more: &'a u64,
}

impl<'a> StoredHead<'a> {
    fn of(d: &'a RecordDoc) -> StoredHead<'a> {
        // Every field named: a field added to `RecordDoc` must be placed here too.
        let RecordDoc {
            id,
            created,
            member,
            kind,
            directions,
            lang,
            languages,
            title,
            summary,
            body: _,
            tags,
            date,
            status,
            publisher,
            attachments: _,
            files,
            files_more,
        } = d;
        StoredHead {
            id,
            created,
            member,
            kind,
            directions,
            lang,
            languages,
            title,
            summary,
            tags,
            date: date.as_deref(),
            status,
            publisher,
            files,
            files_more,
        }
    }
}

/// Whether a document given to [`SearchIndex::apply`] may already be in the index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Presence {
    /// No version of it is in the index: its record was stored just now, or the index was
    /// cleared since. It is only added (adding one that is there would leave two).
    New,
    /// It may be in the index (its record's status changed, say): the one there is replaced.
    Maybe,
}

/// Each filter's [`MAX_FACET_VALUES`] most frequent values (ties by value).
fn most_frequent(
    facets: BTreeMap<String, BTreeMap<String, u64>>,
) -> BTreeMap<String, BTreeMap<String, u64>> {
    facets
        .into_iter()
        .map(|(name, values)| {
            if values.len() <= MAX_FACET_VALUES {
                return (name, values);
            }
            let mut v: Vec<(String, u64)> = values.into_iter().collect();
            v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
            v.truncate(MAX_FACET_VALUES);
            (name, v.into_iter().collect())
        })
        .collect()
}

/// Languages of a record a document keeps (the record's own first).
pub const DOC_LANGUAGES: usize = 16;
/// Characters of a title (and of a file's name) a document keeps.
pub const DOC_TITLE_CHARS: usize = 512;
/// Characters of a summary a document keeps.
pub const DOC_SUMMARY_CHARS: usize = 4096;
/// Tags a document keeps, and the characters of each.
pub const DOC_TAGS: usize = 64;
/// Files a record's search document lists (a record may name a thousand, each with a name of
/// 512 characters: a hit of a megabyte); how many more it names is counted.
pub const DOC_FILES: usize = 64;
pub const DOC_TAG_CHARS: usize = 64;
/// Values of one filter an answer lists (the most frequent): a member cannot make every
/// search page list thousands of languages.
pub const MAX_FACET_VALUES: usize = 100;

/// A language tag's shape (BCP 47: letters, digits and hyphens, at most 35 characters).
fn looks_like_language(l: &str) -> bool {
    !l.is_empty() && l.len() <= 35 && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

/// Text as shown: without control characters (line breaks and tabs kept unless `line`, where
/// they read as a space: a title signed on two lines shows its words apart), without the
/// invisible characters that reorder or hide text (bidirectional overrides and isolates,
/// zero-width characters, the byte-order mark) and without noncharacters (U+FFFE, U+FFFF and
/// their kin, which no XML document may hold: one in a title broke every Atom feed listing it).
fn shown(t: &str, line: bool) -> String {
    let hidden = |c: char| {
        matches!(c, '\u{061C}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{2064}' | '\u{2066}'..='\u{2069}' | '\u{FEFF}' | '\u{FDD0}'..='\u{FDEF}')
            || (c as u32) & 0xFFFE == 0xFFFE
    };
    let s: String = t
        .chars()
        .map(|c| {
            if line && matches!(c, '\n' | '\r' | '\t') {
                ' '
            } else {
                c
            }
        })
        .filter(|c| !hidden(*c) && (!c.is_control() || (!line && matches!(c, '\n' | '\t'))))
        .collect();
    if line { s.trim().to_string() } else { s }
}

/// A title, a file's or a publisher's name as pages show it (what [`RecordDoc::of`] keeps of
/// it): on one line, no control, bidirectional-override or noncharacter characters, at most
/// [`DOC_TITLE_CHARS`] characters.
pub fn display_line(t: &str) -> String {
    cut_chars(&shown(t, true), DOC_TITLE_CHARS)
}

/// Text of several lines as pages show it (a summary, a paragraph of a body): its line
/// breaks kept, without control, bidirectional-control or noncharacter characters, so a signed
/// text cannot reorder what a page shows around it. Unlike [`display_line`], the zero-width
/// joiner and non-joiner stay: running text needs them (emoji sequences, the scripts that
/// join letters).
pub fn display_text(t: &str) -> String {
    t.chars()
        .filter(|c| {
            !(matches!(c, '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{FDD0}'..='\u{FDEF}')
                || (*c as u32) & 0xFFFE == 0xFFFE
                || (c.is_control() && !matches!(c, '\n' | '\t')))
        })
        .collect()
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// At most `n` characters of `t`, an ellipsis marking a cut.
fn cut_chars(t: &str, n: usize) -> String {
    match t.char_indices().nth(n) {
        Some((i, _)) => format!("{}…", &t[..i]),
        None => t.to_string(),
    }
}

/// A file a record attaches, as listed in results and exports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileRef {
    pub name: String,
    pub media_type: String,
    pub size: u64,
    pub sha256: String,
}

/// The text of one attachment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttachmentText {
    pub name: String,
    pub text: String,
}

impl AttachmentText {
    /// The language family its text is analysed in: by its script.
    fn lang<'a>(&self, fallback: &'a str) -> &'a str {
        plan::query_lang(&self.text.chars().take(2000).collect::<String>()).unwrap_or(fallback)
    }
}

impl RecordDoc {
    /// Builds the document of a record with its derived status and publisher name.
    /// The document of a record, as every list, page, export and stream shows it. What a
    /// member writes is bounded here, whatever the charter allows in the signed record (which
    /// the record's own page and the signed object still give whole): at most
    /// [`DOC_LANGUAGES`] languages, titles of [`DOC_TITLE_CHARS`] and summaries of
    /// [`DOC_SUMMARY_CHARS`] characters, [`DOC_TAGS`] tags of [`DOC_TAG_CHARS`]; control and
    /// bidirectional-override characters are taken out of titles, tags and file names (a title
    /// of a million U+0001 was 12 MiB of JSON per hit, `invoice\u{202E}fdp.exe` showed as
    /// `invoiceexe.pdf`).
    pub fn of(id: ObjectId, r: &Record, status: &str, publisher: &str) -> RecordDoc {
        // The record's own language first, then the others in order, up to the bound; a
        // language must look like a tag (a member cannot add a thousand filter values).
        let mut languages: Vec<String> = vec![r.lang.clone()];
        languages.extend(
            r.languages()
                .into_iter()
                .filter(|l| *l != r.lang && looks_like_language(l)),
        );
        languages.truncate(DOC_LANGUAGES);
        // Titles and summaries cleaned and cut; bodies as written (their text is indexed, and
        // pages render them as Markdown, escaped), only their languages bounded.
        let kept = |m: &BTreeMap<String, String>, chars: Option<usize>, line: bool| {
            m.iter()
                .filter(|(l, _)| languages.contains(l))
                .map(|(l, t)| {
                    let t = match chars {
                        Some(n) => cut_chars(&shown(t, line), n),
                        None => t.clone(),
                    };
                    (l.clone(), t)
                })
                .collect::<BTreeMap<String, String>>()
        };
        RecordDoc {
            id,
            created: r.created,
            member: r.member.to_string(),
            kind: r.kind.clone(),
            directions: r.directions.clone(),
            lang: r.lang.clone(),
            title: kept(&r.title, Some(DOC_TITLE_CHARS), true),
            summary: kept(&r.summary, Some(DOC_SUMMARY_CHARS), false),
            body: kept(&r.body, None, false),
            languages: {
                let mut l = languages.clone();
                l.sort();
                l
            },
            tags: r.tags.iter().take(DOC_TAGS).map(|t| clean_tag(t)).collect(),
            date: r.date.clone(),
            status: status.to_string(),
            publisher: display_line(publisher),
            attachments: Vec::new(),
            files_more: r.attachments.len().saturating_sub(DOC_FILES) as u64,
            files: r
                .attachments
                .iter()
                .take(DOC_FILES)
                .map(|a| FileRef {
                    name: cut_chars(&shown(&a.name, true), DOC_TITLE_CHARS),
                    media_type: a.media_type.clone(),
                    size: a.size,
                    sha256: a.sha256.to_string(),
                })
                .collect(),
        }
    }

    /// The title in `lang`, else in the original language, else any.
    pub fn title_in(&self, lang: &str) -> &str {
        self.title_and_lang_in(lang).0
    }

    /// [`RecordDoc::title_in`] and the language it is written in (for a page's `lang`
    /// attribute).
    pub fn title_and_lang_in(&self, lang: &str) -> (&str, &str) {
        self.title
            .get_key_value(lang)
            .or_else(|| self.title.get_key_value(&self.lang))
            .or_else(|| self.title.iter().next())
            .map_or(("", self.lang.as_str()), |(l, t)| (t.as_str(), l.as_str()))
    }

    /// Words of the record's head (title and summary) per language, and of its text (body and
    /// tags, the tags counted in the original language).
    fn head_and_text(&self) -> (BTreeMap<&str, String>, BTreeMap<&str, String>) {
        let mut head: BTreeMap<&str, String> = BTreeMap::new();
        for (lang, t) in self.title.iter().chain(self.summary.iter()) {
            let h = head.entry(lang).or_default();
            h.push_str(t);
            h.push('\n');
        }
        let mut text: BTreeMap<&str, String> = BTreeMap::new();
        for (lang, t) in &self.body {
            text.entry(lang).or_default().push_str(t);
        }
        if !self.tags.is_empty() {
            let t = text.entry(&self.lang).or_default();
            t.push('\n');
            t.push_str(&self.tags.join(" "));
        }
        for a in &self.attachments {
            let t = text.entry(a.lang(&self.lang)).or_default();
            t.push('\n');
            t.push_str(&a.text);
        }
        (head, text)
    }
}

/// How results are ordered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Sort {
    /// Best match first (the default when there is query text); newer first among equals.
    #[default]
    Relevance,
    /// Recently published (signed) first.
    Newest,
    /// Earliest published first.
    Oldest,
    /// By the source document's date (`date`), latest first; records without a date last.
    DocumentNewest,
    /// By the source document's date, earliest first; records without a date last.
    DocumentOldest,
}

/// A search: text and filters. Several values in one list mean OR; lists combine with AND.
#[derive(Debug, Clone, Default)]
pub struct SearchQuery {
    pub text: Option<String>,
    pub members: Vec<String>,
    pub kinds: Vec<String>,
    pub directions: Vec<String>,
    pub langs: Vec<String>,
    pub publishers: Vec<String>,
    /// Tags, each matched whole as [`tag_key`] reads it ("E-Government" finds
    /// "e-government", not "government").
    pub tags: Vec<String>,
    /// Empty means `active` only.
    pub statuses: Vec<String>,
    pub since: Option<Timestamp>,
    pub until: Option<Timestamp>,
    /// The source document's date at or after this (records without a date are left out).
    pub date_from: Option<Timestamp>,
    /// The source document's date before this.
    pub date_until: Option<Timestamp>,
    pub sort: Option<Sort>,
    pub limit: usize,
    pub offset: usize,
    /// The reader's language: snippets are taken in it when the query's words do not name
    /// one (the web interface's language; the API leaves it unset).
    pub reader_lang: Option<String>,
    /// Hits carry the record's head only: no body, no attachment text, no snippet (exports and
    /// feeds, which never show them: a page of heads stays small whatever the records hold).
    pub heads_only: bool,
    /// The words are searched as typed: a query that finds nothing (or less than its
    /// correction) is not replaced by its correction or its other-layout reading; these are
    /// offered in [`SearchResult::did_you_mean`] instead ("search instead for" on a page that
    /// showed a correction).
    pub as_typed: bool,
}

/// One result.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Hit {
    /// The record's head: its body and files' text are read for the snippet and not kept
    /// (empty here; the record's page reads them from the store).
    pub doc: RecordDoc,
    /// An HTML fragment of plain text (Markdown rendered away, escaped) with matched words in
    /// `<b>`: the best passage of the summary or body, or the summary when nothing matched.
    pub snippet: String,
    /// The language of the summary or body the snippet was cut from (a record's language tag),
    /// for pages to mark it so; `None` for a passage of an attached file, whose language is
    /// not known, and for no snippet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snippet_lang: Option<String>,
}

/// A page of results.
#[derive(Debug, Clone)]
pub struct SearchResult {
    pub total: usize,
    pub hits: Vec<Hit>,
    /// Facet counts over the whole result set: facet → value → count.
    pub facets: BTreeMap<String, BTreeMap<String, u64>>,
    pub next_offset: Option<usize>,
    /// More records match than paging reaches ([`MAX_OFFSET`]): there is no next offset
    /// although the result goes on.
    pub cut: bool,
    /// A corrected query built from the index's own words, when a word of the query is
    /// unknown and the correction finds records.
    pub did_you_mean: Option<String>,
    /// How the query was read beyond its own words.
    pub reading: Reading,
}

/// How a query was read beyond its own words, so that the UI and the CLI can say it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reading {
    /// Exact and stemmed matches were few, so similar spellings and word beginnings were
    /// searched too (ranked below exact matches).
    pub approximate: bool,
    /// Equivalent terms in other languages (or synonyms) that were searched too.
    pub also: Vec<String>,
    /// Taxonomy directions whose name the query matched (their records are included, ranked
    /// below text matches).
    pub directions: Vec<String>,
    /// Members a word of the query names: their records are included (ranked below text
    /// matches), as if the word were in them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub members: Vec<String>,
    /// The query found nothing even approximately, so these are the results of its correction
    /// (`did_you_mean`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub showing_for: Option<String>,
    /// The query's text has no letters or digits to search for (an emoji or punctuation
    /// only): it was left aside, and the records that pass the filters are shown.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub no_words: bool,
    /// A word of the query is too long to be a word of the index ([`MAX_TERM_BYTES`] or more:
    /// a hash, an id pasted whole), so nothing can hold every word: nothing is shown.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub long_words: bool,
}

/// The facet names.
pub const FACETS: [&str; 8] = [
    "member",
    "kind",
    "direction",
    "lang",
    "status",
    "publisher",
    "year",
    "month",
];

/// The analyser families: each language with a stemmer has its own fields, every other
/// language shares the unstemmed ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Family {
    Ru,
    En,
    Any,
}

impl Family {
    pub(crate) const ALL: [Family; 3] = [Family::Ru, Family::En, Family::Any];

    /// The family of a BCP 47 tag, read case-insensitively ("RU", "ru-KZ" and "ru" alike).
    pub(crate) fn of(lang: &str) -> Family {
        let primary = lang.split('-').next().unwrap_or(lang);
        if primary.eq_ignore_ascii_case("ru") {
            Family::Ru
        } else if primary.eq_ignore_ascii_case("en") {
            Family::En
        } else {
            Family::Any
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct Fields {
    id: Field,
    created: Field,
    /// The source document's date (midnight UTC, ms), when given.
    date: Field,
    facet: Field,
    doc: Field,
    /// Title and summary, per family.
    head: [Field; 3],
    /// Body and tags, per family.
    text: [Field; 3],
    /// The surface words (folded and exact, unstemmed) of titles, summaries and tags: the
    /// vocabulary of corrections and completions.
    words: Field,
    /// Each tag whole, as [`tag_key`] reads it: the tag filter's terms.
    tag: Field,
}

impl Fields {
    pub(crate) fn head(&self, f: Family) -> Field {
        self.head[f as usize]
    }
    pub(crate) fn text(&self, f: Family) -> Field {
        self.text[f as usize]
    }

    /// The filter clauses of a query.
    pub(crate) fn filters(&self, q: &SearchQuery) -> Vec<(Occur, Box<dyn Query>)> {
        let f = *self;
        let mut clauses: Vec<(Occur, Box<dyn Query>)> = Vec::new();
        for terms in self.facet_filters(q) {
            let any: Vec<(Occur, Box<dyn Query>)> = terms
                .into_iter()
                .map(|term| {
                    (
                        Occur::Should,
                        Box::new(TermQuery::new(term, IndexRecordOption::Basic)) as Box<dyn Query>,
                    )
                })
                .collect();
            clauses.push((Occur::Must, unscored(Box::new(BooleanQuery::new(any)))));
        }
        if q.since.is_some() || q.until.is_some() {
            let lo = q.since.map_or(Bound::Unbounded, |t| {
                Bound::Included(Term::from_field_u64(f.created, t.0))
            });
            let hi = q.until.map_or(Bound::Unbounded, |t| {
                Bound::Excluded(Term::from_field_u64(f.created, t.0))
            });
            clauses.push((Occur::Must, unscored(Box::new(RangeQuery::new(lo, hi)))));
        }
        if !q.tags.is_empty() {
            let any: Vec<(Occur, Box<dyn Query>)> = q
                .tags
                .iter()
                .map(|t| {
                    let term = Term::from_field_text(f.tag, &tag_key(t));
                    (
                        Occur::Should,
                        Box::new(TermQuery::new(term, IndexRecordOption::Basic)) as Box<dyn Query>,
                    )
                })
                .collect();
            clauses.push((Occur::Must, unscored(Box::new(BooleanQuery::new(any)))));
        }
        if q.date_from.is_some() || q.date_until.is_some() {
            let lo = Bound::Included(Term::from_field_u64(f.date, q.date_from.map_or(0, |t| t.0)));
            let hi = q.date_until.map_or(Bound::Unbounded, |t| {
                Bound::Excluded(Term::from_field_u64(f.date, t.0))
            });
            clauses.push((Occur::Must, unscored(Box::new(RangeQuery::new(lo, hi)))));
        }
        clauses
    }

    /// The facet filters of a query: each list of terms is one filter (a document must hold one
    /// of its terms), and a document must pass every filter. Statuses default to `active`.
    pub(crate) fn facet_filters(&self, q: &SearchQuery) -> Vec<Vec<Term>> {
        let statuses = if q.statuses.is_empty() {
            vec!["active".to_string()]
        } else {
            q.statuses.clone()
        };
        [
            ("member", &q.members),
            ("kind", &q.kinds),
            ("direction", &q.directions),
            ("lang", &q.langs),
            ("publisher", &q.publishers),
            ("status", &statuses),
        ]
        .into_iter()
        .filter(|(_, values)| !values.is_empty())
        .map(|(kind, values)| {
            values
                .iter()
                .map(|v| Term::from_facet(self.facet, &facet(kind, v)))
                .collect()
        })
        .collect()
    }

    /// `q` with each language filter that is a bare language (`uz`) also naming the tags of that
    /// language the index holds with a script or region (`uz-Latn`, `uz-Cyrl`), as
    /// [`lang_filter_matches`] reads them; `None` when it changes nothing. A member's language
    /// is written in two scripts, and an analyst asking for Uzbek means both.
    pub(crate) fn with_lang_subtags(
        &self,
        searcher: &tantivy::Searcher,
        q: &SearchQuery,
    ) -> Option<SearchQuery> {
        let mut more: Vec<String> = Vec::new();
        for bare in q.langs.iter().filter(|l| !l.contains('-')) {
            let mut taken = 0;
            let prefix = facet("lang", &format!("{bare}-"));
            let prefix = prefix.encoded_str().as_bytes();
            for reader in searcher.segment_readers() {
                let Ok(inverted) = reader.inverted_index(self.facet) else {
                    continue;
                };
                let Ok(mut terms) = inverted.terms().range().ge(prefix).into_stream() else {
                    continue;
                };
                while terms.advance() && taken < MAX_LANG_SUBTAGS {
                    let key = terms.key();
                    if !key.starts_with(prefix) {
                        break;
                    }
                    let Ok(f) = Facet::from_encoded(key.to_vec()) else {
                        continue;
                    };
                    if let Some(tag) = f.to_path().get(1).map(|t| t.to_string())
                        && !q.langs.contains(&tag)
                        && !more.contains(&tag)
                    {
                        more.push(tag);
                        taken += 1;
                    }
                }
            }
        }
        if more.is_empty() {
            return None;
        }
        let mut e = q.clone();
        e.langs.extend(more);
        Some(e)
    }

    /// Whether the filters of `q` (and nothing else: no text, no dates) keep every document of
    /// a segment: each filter has a term that every document of the segment holds (deleted
    /// ones too, so every live one).
    pub(crate) fn keeps_whole(&self, q: &SearchQuery, reader: &tantivy::SegmentReader) -> bool {
        let ranged = q.since.is_some()
            || q.until.is_some()
            || q.date_from.is_some()
            || q.date_until.is_some();
        if ranged || !q.tags.is_empty() {
            return false;
        }
        let Ok(inverted) = reader.inverted_index(self.facet) else {
            return false;
        };
        self.facet_filters(q).iter().all(|terms| {
            terms.iter().any(|t| {
                inverted
                    .doc_freq(t)
                    .is_ok_and(|n| n == reader.max_doc() && n > 0)
            })
        })
    }
}

/// A filter as a clause of a ranked query (see [`Unscored`]).
fn unscored(filter: Box<dyn Query>) -> Box<dyn Query> {
    Box::new(Unscored(filter))
}

/// A filter: it decides which records match and adds nothing to their score.
///
/// Scored, a facet filter added its term's weight to every match, so that among records a text
/// matches equally a record of a rarer member ranked higher; and its postings were decoded and
/// weighed for every match, though a filter such as "active" holds every record of most
/// segments. Unscored, such a term is read as every document of the segment, which the ranked
/// query's intersection then drops (a third of a common word's first ranked run over a million
/// records: "Counts from what a query leaves out" in docs/BENCHMARKS.md).
#[derive(Debug)]
struct Unscored(Box<dyn Query>);

impl Clone for Unscored {
    fn clone(&self) -> Self {
        Unscored(self.0.box_clone())
    }
}

impl Query for Unscored {
    fn weight(
        &self,
        scoring: tantivy::query::EnableScoring<'_>,
    ) -> tantivy::Result<Box<dyn tantivy::query::Weight>> {
        use tantivy::query::EnableScoring;
        let disabled = match scoring.searcher() {
            Some(searcher) => EnableScoring::disabled_from_searcher(searcher),
            None => EnableScoring::disabled_from_schema(scoring.schema()),
        };
        let inner = self.0.weight(disabled)?;
        Ok(if scoring.is_scoring_enabled() {
            Box::new(UnscoredWeight(inner))
        } else {
            inner
        })
    }

    fn query_terms<'a>(&'a self, visitor: &mut dyn FnMut(&'a Term, bool)) {
        self.0.query_terms(visitor);
    }
}

/// The weight of an [`Unscored`] filter in a ranked query: its matches score 0, except in a
/// segment where it matches every document, whose scorer it passes on as it is, so that the
/// intersection drops it (tantivy's `BooleanWeight` drops an every-document scorer from its
/// required clauses, and scores the rest).
struct UnscoredWeight(Box<dyn tantivy::query::Weight>);

impl tantivy::query::Weight for UnscoredWeight {
    fn scorer(
        &self,
        reader: &tantivy::SegmentReader,
        _boost: tantivy::Score,
    ) -> tantivy::Result<Box<dyn tantivy::query::Scorer>> {
        let inner = self.0.scorer(reader, 1.0)?;
        if inner.is::<tantivy::query::AllScorer>() {
            return Ok(inner);
        }
        Ok(Box::new(tantivy::query::ConstScorer::new(inner, 0.0)))
    }

    fn explain(
        &self,
        reader: &tantivy::SegmentReader,
        doc: tantivy::DocId,
    ) -> tantivy::Result<tantivy::query::Explanation> {
        self.0.explain(reader, doc)?;
        Ok(tantivy::query::Explanation::new("filter", 0.0))
    }
}

const TOKENIZERS: [&str; 3] = ["accord_ru", "accord_en", "accord_any"];

fn schema() -> (Schema, Fields) {
    let mut b = Schema::builder();
    // Indexed, not stored: the document is stored once, as `doc` (snippets are cut from it,
    // with its long texts from a `TextSource` when the index does not store them), so storing
    // the text fields too doubled the document store and its merges.
    let text = |tokenizer: &str, option: IndexRecordOption| {
        TextOptions::default().set_indexing_options(
            TextFieldIndexing::default()
                .set_tokenizer(tokenizer)
                .set_index_option(option),
        )
    };
    // Frequencies for BM25, no positions: no query matches phrases, and snippets are cut from
    // the stored document. (Positions were a third of the indexing work and of the index.)
    let freqs = IndexRecordOption::WithFreqs;
    let head = Family::ALL.map(|f| {
        let name = ["head_ru", "head_en", "head_any"][f as usize];
        b.add_text_field(name, text(TOKENIZERS[f as usize], freqs))
    });
    let body = Family::ALL.map(|f| {
        let name = ["text_ru", "text_en", "text_any"][f as usize];
        b.add_text_field(name, text(TOKENIZERS[f as usize], freqs))
    });
    let f = Fields {
        // The object id's 32 bytes, indexed only (replacements delete by it; hits take the id
        // from the stored document): half the key bytes of its hex form in every segment's
        // term dictionary and every merge, and no second stored copy.
        id: b.add_bytes_field("id", INDEXED),
        created: b.add_u64_field("created", INDEXED | FAST | STORED),
        date: b.add_u64_field("date", INDEXED | FAST),
        facet: b.add_facet_field("facet", FacetOptions::default()),
        doc: b.add_text_field("doc", STORED),
        head,
        text: body,
        words: b.add_text_field("words", text("accord_any", IndexRecordOption::Basic)),
        // A raw term per tag, indexed only: a filter, not a facet, so that counting facets
        // never reads a member's free-form tags.
        tag: b.add_text_field("tag", STRING),
    };
    (b.build(), f)
}

/// The analyser of a family: words folded (exact forms kept beside), long ones dropped, then
/// the family's stemmer.
fn analyzer(family: Family) -> TextAnalyzer {
    let base = TextAnalyzer::builder(analysis::FoldingTokenizer::default())
        .filter(RemoveLongFilter::limit(MAX_TERM_BYTES));
    match family {
        Family::Ru => base
            .filter(analysis::CachedStemmer::new(Language::Russian))
            .build(),
        Family::En => base
            .filter(analysis::CachedStemmer::new(Language::English))
            .build(),
        Family::Any => base.build(),
    }
}

fn register_tokenizers(index: &Index) {
    for family in Family::ALL {
        index
            .tokenizers()
            .register(TOKENIZERS[family as usize], analyzer(family));
    }
}

/// Text typed with the other keyboard layout, read on the one meant: Latin keys (and the
/// punctuation keys where the Russian layout has letters: `;` ж, `'` э, `,` б, `.` ю, `[` х,
/// `]` ъ, `` ` `` ё) as ЙЦУКЕН, or Cyrillic as QWERTY. `None` when the text has letters of both
/// alphabets, none at all, or a character neither layout explains (then it was not a slip of
/// the layout).
pub fn swap_layout(text: &str) -> Option<String> {
    const LATIN: &str = "qwertyuiop[]asdfghjkl;'zxcvbnm,.`";
    const CYRILLIC: &str = "йцукенгшщзхъфывапролджэячсмитьбюё";
    let latin: Vec<char> = LATIN.chars().collect();
    let cyrillic: Vec<char> = CYRILLIC.chars().collect();
    let has_latin = text.chars().any(|c| c.is_ascii_alphabetic());
    let has_cyrillic = text
        .chars()
        .any(|c| cyrillic.contains(&c.to_lowercase().next().unwrap_or(c)));
    let (from, to) = match (has_latin, has_cyrillic) {
        (true, false) => (&latin, &cyrillic),
        (false, true) => (&cyrillic, &latin),
        _ => return None,
    };
    let mut out = String::with_capacity(text.len() * 2);
    for c in text.chars() {
        let lower = c.to_lowercase().next().unwrap_or(c);
        match from.iter().position(|x| *x == lower) {
            Some(i) => out.push(to[i]),
            None if c.is_whitespace() || c.is_ascii_digit() || c == '-' => out.push(c),
            // A Cyrillic text keeps its own punctuation (`,` `.` are letters only on Latin keys).
            None if from[0] == 'й' && ",.;:!?\"'()".contains(c) => out.push(c),
            None => return None,
        }
    }
    Some(out)
}

/// A record's words in each language family's analysis, as the live stream matches them:
/// analysed once per record and shared by every subscriber ([`QueryWords::matches`]). Each of
/// the record's texts is read in its own language's family, as the index reads it into that
/// family's fields (which are the only ones a query's words of that family are looked for in).
#[derive(Debug, Clone, Default)]
pub struct DocWords {
    /// Each family's distinct words, sorted.
    per_family: Vec<Vec<String>>,
}

/// Distinct words per language family a [`DocWords`] keeps (a record of ordinary length has
/// a few hundred); a live stream does not match a word of a longer record beyond them.
pub const MAX_DOC_WORDS: usize = 4096;

/// Each language family's analyser, as [`DocWords::of_with`] reads records with: one kept by
/// the caller for every record (the live stream's feed keeps one), since building them cost as
/// much as analysing a short record, and a kept copy's own stem memory stays warm.
pub struct DocAnalyzers([TextAnalyzer; 3]);

impl std::fmt::Debug for DocAnalyzers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DocAnalyzers")
    }
}

impl Default for DocAnalyzers {
    fn default() -> Self {
        DocAnalyzers(Family::ALL.map(analyzer))
    }
}

impl DocWords {
    /// A record's words, with analysers made for it alone ([`DocWords::of_with`] keeps them).
    pub fn of(d: &RecordDoc) -> DocWords {
        DocWords::of_with(&mut DocAnalyzers::default(), d)
    }

    /// A record's words, read with `analyzers`.
    pub fn of_with(analyzers: &mut DocAnalyzers, d: &RecordDoc) -> DocWords {
        let (head, text) = d.head_and_text();
        let tags = d.tags.join(" ");
        // Head and tags first: a longer record's words beyond the bound are its body's.
        let texts: Vec<(Family, &str)> = head
            .iter()
            .map(|(lang, t)| (Family::of(lang), t.as_str()))
            .chain((!tags.is_empty()).then(|| (Family::of(&d.lang), tags.as_str())))
            .chain(text.iter().map(|(lang, t)| (Family::of(lang), t.as_str())))
            .collect();
        // A hash set while analysing (a token at a time, most of them repeats), then sorted
        // once: a sorted tree compared strings a dozen times a token, two thirds of the
        // analysis. Keyed at random, so that a hostile body's words cannot be made to collide.
        let mut sets: [std::collections::HashSet<String>; 3] = Default::default();
        for (family, t) in texts {
            let have = &mut sets[family as usize];
            let mut stream = analyzers.0[family as usize].token_stream(t);
            while stream.advance() {
                let w = &stream.token().text;
                if have.contains(w) {
                    continue;
                }
                // Bounded: a live stream holds the words of its last records, and a hostile
                // body of a million distinct words must not make that gigabytes.
                if have.len() >= MAX_DOC_WORDS {
                    break;
                }
                have.insert(w.clone());
            }
        }
        DocWords {
            per_family: sets
                .into_iter()
                .map(|set| {
                    let mut words: Vec<String> = set.into_iter().collect();
                    words.sort_unstable();
                    words
                })
                .collect(),
        }
    }
}

impl DocWords {
    /// The words kept, in all families.
    pub fn len(&self) -> usize {
        self.per_family.iter().map(|f| f.len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Query text analysed once (a live stream's subscriber), to be matched against any number of
/// records' [`DocWords`].
#[derive(Debug, Clone)]
pub struct QueryWords {
    per_family: Vec<Vec<Vec<String>>>,
    /// The words that must match (the content words; all of them when every word is a stop
    /// word).
    needed: Vec<usize>,
    /// The last word, matched also as a beginning while it is being typed.
    partial: Option<usize>,
    /// Per word, the base whose forms it also matches among the words of the languages Accord
    /// does not stem (`analysis::inflection_base`), as the search reads it.
    bases: Vec<Option<String>>,
}

impl QueryWords {
    pub fn of(text: &str) -> QueryWords {
        let per_family: Vec<Vec<Vec<String>>> = Family::ALL
            .iter()
            .map(|f| plan::analyze_with(&mut analyzer(*f), text))
            .collect();
        let bases: Vec<Option<String>> = per_family
            .get(Family::Any as usize)
            .map(|words| {
                words
                    .iter()
                    .map(|t| t.first().and_then(|t| analysis::inflection_base(t)))
                    .collect()
            })
            .unwrap_or_default();
        let surfaces = analysis::words(text);
        let content: Vec<usize> = (0..surfaces.len())
            .filter(|i| !analysis::is_stop_word(&analysis::fold_word(&surfaces[*i].2)))
            .collect();
        let needed = if content.is_empty() {
            (0..surfaces.len()).collect()
        } else {
            content
        };
        // As the search reads a last word being typed: a beginning from three letters on
        // ("AI" is not the beginning of "aims").
        let partial = surfaces
            .last()
            .filter(|w| {
                let folded = analysis::fold_word(&w.2);
                !text.ends_with(char::is_whitespace)
                    && folded.chars().count() >= plan::MIN_BEGINNING_CHARS
                    && !analysis::is_stop_word(&folded)
            })
            .map(|_| surfaces.len() - 1);
        QueryWords {
            per_family,
            needed,
            partial,
            bases,
        }
    }

    /// Whether every needed word, in some language family's analysis, is a word of the record
    /// (the last one also as a beginning). Each look-up is a search in the record's sorted
    /// words: no scan of the record per subscriber.
    pub fn matches(&self, d: &DocWords) -> bool {
        self.needed.iter().all(|&i| {
            let last = self.partial == Some(i);
            self.per_family.iter().zip(&d.per_family).any(|(q, have)| {
                q.get(i).into_iter().flatten().any(|t| {
                    // The first of the record's words not before `t`: `t` itself, or the
                    // first it begins.
                    let at = have.partition_point(|h| h.as_str() < t.as_str());
                    have.get(at)
                        .is_some_and(|h| h == t || (last && h.starts_with(t.as_str())))
                })
            }) || self.inflected(i, d)
        })
    }

    /// Whether a form of word `i`'s base is a word of the record in a language Accord does not
    /// stem (the base itself, or the first word it begins), as the search finds one.
    fn inflected(&self, i: usize, d: &DocWords) -> bool {
        let Some(base) = self.bases.get(i).and_then(Option::as_deref) else {
            return false;
        };
        d.per_family.get(Family::Any as usize).is_some_and(|have| {
            let at = have.partition_point(|h| h.as_str() < base);
            have.get(at).is_some_and(|h| h.starts_with(base))
        })
    }
}

/// Whether a record matches query text as the index would read it, without an index (the live
/// stream): every content word, in some language's analysis, is a word of the record, the last
/// word also as a beginning. Glossary and approximate readings are not applied.
pub fn doc_matches_text(d: &RecordDoc, text: &str) -> bool {
    QueryWords::of(text).matches(&DocWords::of(d))
}

/// The index. Queries may run from any thread; writing is `&mut`.
pub struct SearchIndex {
    index: Index,
    reader: IndexReader,
    writer: IndexWriter,
    f: Fields,
    /// Whether documents store their long texts (see [`Self::without_long_texts`]).
    long_texts: bool,
}

impl std::fmt::Debug for SearchIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SearchIndex")
            .field("docs", &self.num_docs())
            .finish()
    }
}

fn facet(kind: &str, value: &str) -> Facet {
    Facet::from_path([kind, value])
}

/// Tags of one language a bare language filter also takes, at most ([`Fields::with_lang_subtags`]):
/// far more than a language has scripts and regions, so that made-up tags a member signs
/// (`uz-0`, which sorts before `uz-Cyrl`) cannot crowd the real ones out; each is one more term
/// of the filter.
const MAX_LANG_SUBTAGS: usize = 1024;

/// Whether a record's language tag `tag` passes the language filter `filter`: the same tag, or
/// for a bare language (`uz`) any tag of it with a script or region (`uz-Latn`). As the search
/// reads the filter, for the live stream to read it alike.
pub fn lang_filter_matches(filter: &str, tag: &str) -> bool {
    tag == filter
        || (!filter.contains('-')
            && tag
                .strip_prefix(filter)
                .is_some_and(|rest| rest.starts_with('-')))
}

/// A tag as the tag filter matches it: as pages show it (no control or invisible characters),
/// composed (NFC), with Latin ligatures, full-width forms, the long s and the micro sign in their
/// plain form ("ﬁ" is "fi", "ＡＩ" is "ai"; superscripts, circled digits and the like stay
/// apart: "m²" is not "m2"), case folded (lower case, and "ß" is "ss", final "ς" is "σ", "İ" is
/// "i"), "ё" read as "е", its runs of white space one space, trimmed: "E-Government " and
/// "e-government" are one tag, as are "STRASSE" and "Straße", "Объём" and "объем". Tags are
/// matched whole: the words in them are found by the text search. Casing follows Unicode's
/// default rules, not Azerbaijani's: "I" is "i", not "ı".
pub fn tag_key(tag: &str) -> String {
    use unicode_normalization::UnicodeNormalization;
    // Compatibility forms that only change how a letter is drawn.
    let plain =
        |c: char| matches!(c, '\u{FB00}'..='\u{FB06}' | '\u{FF01}'..='\u{FF5E}' | 'ſ' | 'µ');
    let mut composed = String::with_capacity(tag.len());
    for c in shown(tag, true).nfc() {
        if plain(c) {
            composed.extend(std::iter::once(c).nfkc());
        } else {
            composed.push(c);
        }
    }
    let mut folded = String::with_capacity(composed.len());
    for word in composed.split_whitespace() {
        if !folded.is_empty() {
            folded.push(' ');
        }
        for c in word.chars() {
            match c {
                // Lower-cased, "İ" would be "i" and a combining dot above.
                'İ' => folded.push('i'),
                c => {
                    for l in c.to_lowercase() {
                        match l {
                            'ß' => folded.push_str("ss"),
                            'ς' => folded.push('σ'),
                            'ё' => folded.push('е'),
                            l => folded.push(l),
                        }
                    }
                }
            }
        }
    }
    folded.nfc().collect()
}

/// A tag as pages and lists show it (what [`RecordDoc::of`] keeps of it): no control or
/// invisible characters, at most [`DOC_TAG_CHARS`] characters.
pub fn clean_tag(t: &str) -> String {
    cut_chars(&shown(t, true), DOC_TAG_CHARS)
}

impl SearchIndex {
    /// Opens the index in `dir`, creating it if missing. An index that cannot be opened (corrupt,
    /// another schema) is wiped and created empty; the caller rebuilds it from the store.
    pub fn open(dir: &Path) -> Result<SearchIndex, SearchError> {
        Self::open_with(dir, &IndexOptions::default())
    }

    /// [`Self::open`] with `opts`.
    pub fn open_with(dir: &Path, opts: &IndexOptions) -> Result<SearchIndex, SearchError> {
        std::fs::create_dir_all(dir)
            .map_err(|e| SearchError::Directory(format!("{}: {e}", dir.display())))?;
        // An index this process may not read or write (its files left by a command run as
        // root, a read-only filesystem) is not damaged: refused as it is, never wiped and
        // rebuilt (minutes at a million records, for nothing).
        usable_dir(dir)?;
        let (schema, f) = schema();
        // Opening reads the segments too (the reader opens every one): a segment file missing
        // or cut short (a data directory copied while the node ran) makes the index as unusable
        // as a damaged `meta.json`. (The writer is made after: its lock held by another process,
        // or too little memory for it, is an error, not damage.)
        let opened = tantivy::directory::MmapDirectory::open(dir)
            .map_err(|e| SearchError::Directory(e.to_string()))
            .and_then(|d| Index::open_or_create(d, schema.clone()).map_err(SearchError::from))
            .and_then(|i| {
                let segments: tantivy::IndexReader = i
                    .reader_builder()
                    .reload_policy(ReloadPolicy::Manual)
                    .try_into()?;
                drop(segments);
                Ok(i)
            });
        let index = match opened {
            Ok(i) => i,
            Err(e) => {
                tracing::warn!(error = %e, dir = %dir.display(), "search index unusable: recreating it");
                std::fs::remove_dir_all(dir).map_err(|e| SearchError::Directory(e.to_string()))?;
                std::fs::create_dir_all(dir).map_err(|e| SearchError::Directory(e.to_string()))?;
                Index::create_in_dir(dir, schema)?
            }
        };
        Self::with_index(index, f, opts)
    }

    /// An index in memory (tests).
    pub fn in_memory() -> Result<SearchIndex, SearchError> {
        let (schema, f) = schema();
        Self::with_index(Index::create_in_ram(schema), f, &IndexOptions::default())
    }

    fn with_index(
        index: Index,
        f: Fields,
        opts: &IndexOptions,
    ) -> Result<SearchIndex, SearchError> {
        register_tokenizers(&index);
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()?;
        let writer = index.writer(opts.writer_heap_bytes)?;
        let mut merges = tantivy::indexer::LogMergePolicy::default();
        merges.set_max_docs_before_merge(MAX_DOCS_BEFORE_MERGE);
        merges.set_min_layer_size(MIN_LAYER_DOCS);
        writer.set_merge_policy(Box::new(merges));
        Ok(SearchIndex {
            index,
            reader,
            writer,
            f,
            long_texts: true,
        })
    }

    /// Documents added from now on keep their long texts (body, attachments' text) out of the
    /// stored document: indexed, not stored. Searchers then read them from a [`TextSource`]
    /// ([`Searcher::with_texts`]); without one, a hit's document has them empty and its snippet
    /// comes from the summary. The node's store already holds every record, and the body was
    /// two thirds of the index on disk (docs/BENCHMARKS.md, "Bodies read from the store").
    pub fn without_long_texts(&mut self) {
        self.long_texts = false;
    }

    /// A handle for queries from other threads, expanding queries with the built-in glossary.
    pub fn searcher(&self) -> Searcher {
        self.searcher_with(Arc::new(Glossary::builtin()))
    }

    /// A handle for queries from other threads, expanding queries with `glossary`.
    pub fn searcher_with(&self, glossary: Arc<Glossary>) -> Searcher {
        Searcher {
            index: self.index.clone(),
            reader: self.reader.clone(),
            f: self.f,
            glossary: Arc::new(std::sync::RwLock::new(Arc::new(
                plan::PreparedGlossary::new(&self.index, &self.f, &glossary),
            ))),
            cache: Arc::new(collect::PageCache::new(collect::CACHE_BYTES)),
            texts: None,
        }
    }

    pub fn num_docs(&self) -> u64 {
        self.reader.searcher().num_docs()
    }

    /// Adds or replaces documents (by id). Visible after [`Self::commit`].
    ///
    /// The documents go to the writer as one batch, which one of its indexing threads takes
    /// whole: a group commit of a few records makes one small segment, not one per thread (each
    /// segment costs a term table and a dozen files, then a merge), while a bulk ingest still
    /// keeps every thread busy with successive batches.
    pub fn upsert(&mut self, docs: &[RecordDoc]) -> Result<(), SearchError> {
        self.apply(docs.iter().map(|d| (d, Presence::Maybe)))
    }

    /// [`Self::upsert`], told which documents cannot be in the index yet: those are only
    /// added. A replacement is a delete by id, which the index applies to every segment at
    /// the next commit (a term lookup in each): for records stored just now, the common case
    /// by far, that is work with nothing to find.
    pub fn apply<'a>(
        &mut self,
        docs: impl IntoIterator<Item = (&'a RecordDoc, Presence)>,
    ) -> Result<(), SearchError> {
        use tantivy::indexer::UserOperation;
        let f = self.f;
        let docs = docs.into_iter();
        let mut ops = Vec::with_capacity(docs.size_hint().0 * 2);
        for (d, presence) in docs {
            let id = d.id.as_bytes();
            if presence == Presence::Maybe {
                ops.push(UserOperation::Delete(Term::from_field_bytes(f.id, id)));
            }
            let mut doc = TantivyDocument::new();
            doc.add_bytes(f.id, id);
            doc.add_u64(f.created, d.created.0);
            if let Some(t) = d.date.as_deref().and_then(Timestamp::from_date) {
                doc.add_u64(f.date, t.0);
            }
            doc.add_facet(f.facet, facet("member", &d.member));
            doc.add_facet(f.facet, facet("kind", &d.kind));
            for x in &d.directions {
                doc.add_facet(f.facet, facet("direction", x));
            }
            for l in &d.languages {
                doc.add_facet(f.facet, facet("lang", l));
            }
            doc.add_facet(f.facet, facet("status", &d.status));
            doc.add_facet(f.facet, facet("publisher", &d.publisher));
            doc.add_facet(f.facet, facet("year", &d.created.date()[..4]));
            doc.add_facet(f.facet, facet("month", &d.created.date()[..7]));
            let stored = if self.long_texts {
                serde_json::to_string(d)
            } else {
                serde_json::to_string(&StoredHead::of(d))
            };
            doc.add_text(f.doc, stored.unwrap_or_default());
            let (head, text) = d.head_and_text();
            for (lang, t) in &head {
                doc.add_text(f.head(Family::of(lang)), t);
                doc.add_text(f.words, t);
            }
            for (lang, t) in &text {
                doc.add_text(f.text(Family::of(lang)), t);
            }
            if !d.tags.is_empty() {
                doc.add_text(f.words, d.tags.join(" "));
            }
            for t in d.tags.iter().map(|t| tag_key(t)).filter(|t| !t.is_empty()) {
                doc.add_text(f.tag, t);
            }
            ops.push(UserOperation::Add(doc));
        }
        if !ops.is_empty() {
            self.writer.run(ops)?;
        }
        Ok(())
    }

    /// Removes every document.
    pub fn clear(&mut self) -> Result<(), SearchError> {
        self.writer.delete_all_documents()?;
        Ok(())
    }

    /// Makes everything added so far searchable.
    pub fn commit(&mut self) -> Result<(), SearchError> {
        self.writer.commit()?;
        self.reader.reload()?;
        Ok(())
    }

    /// [`Self::commit`], recording `mark` (the store's sequence number this index now reflects)
    /// in the commit itself, so that after a crash the index knows what it missed.
    pub fn commit_at(&mut self, mark: u64) -> Result<(), SearchError> {
        self.commit_by_analysis(mark, Some(ANALYSIS_VERSION))
    }

    /// [`Self::commit_at`] as written by analysis version `analysis` (`None`: before versions
    /// were written). Tests of an upgrade use it; the node writes [`ANALYSIS_VERSION`].
    #[doc(hidden)]
    pub fn commit_by_analysis(
        &mut self,
        mark: u64,
        analysis: Option<u32>,
    ) -> Result<(), SearchError> {
        let mut prepared = self.writer.prepare_commit()?;
        prepared.set_payload(&match analysis {
            Some(a) => format!("{mark} analysis {a}"),
            None => mark.to_string(),
        });
        prepared.commit()?;
        self.reader.reload()?;
        Ok(())
    }

    /// Closes the index: waits for the merges the merge policy started, which would otherwise go
    /// on writing into the index directory after the node has stopped (and, in a test or a
    /// benchmark, after its directory was removed). What they merge is kept; none is started.
    pub fn close(self) -> Result<(), SearchError> {
        self.writer.wait_merging_threads()?;
        Ok(())
    }

    /// Number of segments a search visits now.
    pub fn segment_count(&self) -> usize {
        self.reader.searcher().segment_readers().len()
    }

    /// Merges every segment into one and waits for it (tests of what merges change). A merge the
    /// merge policy started meanwhile takes segments away from it; then it starts again with
    /// what there is, a few times.
    pub fn merge_all(&mut self) -> Result<(), SearchError> {
        let mut attempts = 0;
        loop {
            let ids = self.index.searchable_segment_ids()?;
            if ids.len() <= 1 {
                break;
            }
            match self.writer.merge(&ids).wait() {
                Ok(_) => break,
                Err(e) if attempts >= 20 => return Err(e.into()),
                Err(_) => {
                    attempts += 1;
                    std::thread::sleep(std::time::Duration::from_millis(50));
                }
            }
        }
        self.reader.reload()?;
        Ok(())
    }

    /// The mark of the last [`Self::commit_at`], if the index has one.
    pub fn mark(&self) -> Option<u64> {
        let payload = self.index.load_metas().ok()?.payload?;
        payload.split(' ').next()?.parse().ok()
    }

    /// The [`ANALYSIS_VERSION`] that wrote the last commit: 1 for an index from before
    /// versions were written.
    pub fn analysis_version(&self) -> u32 {
        self.index
            .load_metas()
            .ok()
            .and_then(|m| m.payload)
            .and_then(|p| p.split_once(" analysis ").and_then(|(_, v)| v.parse().ok()))
            .unwrap_or(1)
    }
}

/// Runs queries; cheap to clone and usable from any thread.
#[derive(Clone)]
pub struct Searcher {
    index: Index,
    reader: IndexReader,
    f: Fields,
    /// Shared by every clone, and replaced whole when the charter's names change
    /// ([`Searcher::set_glossary`]).
    glossary: Arc<std::sync::RwLock<Arc<plan::PreparedGlossary>>>,
    cache: Arc<collect::PageCache>,
    /// Where hits read the long texts the index does not store.
    texts: Option<Arc<dyn TextSource>>,
}

impl Searcher {
    /// Expands queries with `glossary` from now on, in this searcher and every clone of it (a
    /// charter amendment added a member or a direction, whose names a query may use).
    pub fn set_glossary(&self, glossary: &Glossary) {
        let prepared = Arc::new(plan::PreparedGlossary::new(&self.index, &self.f, glossary));
        *self.glossary.write().unwrap_or_else(|e| e.into_inner()) = prepared;
    }

    /// The glossary in force.
    fn glossary(&self) -> Arc<plan::PreparedGlossary> {
        self.glossary
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

impl std::fmt::Debug for Searcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Searcher")
    }
}

/// One completion of a query being typed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Completion {
    /// The whole query with its last word completed, or a title or direction name.
    pub text: String,
    /// `word`, `title` or `direction` (then `code` names it).
    pub kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// For a title: the record's id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
}

/// Most completions returned.
pub const MAX_COMPLETIONS: usize = 10;

impl Searcher {
    /// This searcher, its hits reading their documents' long texts (body, attachments' text)
    /// from `texts` rather than from the index (see [`SearchIndex::without_long_texts`]).
    pub fn with_texts(mut self, texts: Arc<dyn TextSource>) -> Searcher {
        self.texts = Some(texts);
        self
    }

    /// Number of indexed records.
    pub fn num_docs(&self) -> u64 {
        self.reader.searcher().num_docs()
    }

    /// Puts in this searcher's cache (shared by its clones) what the unfiltered view (active
    /// records, newest first, a page of [`DEFAULT_LIMIT`]) needs from each segment that the
    /// cache lacks: its count, facets and page. For a segment whose records are all active
    /// that is the entry of every document, which every date-ordered filter keeping the whole
    /// segment reads too (see `collect::collect`); for any other segment it also fills that
    /// entry, from which a query matching most of a segment makes its count. The node's indexer
    /// calls it on a clone of the node's searcher after each commit, so that the first run of
    /// the unfiltered view, or of such a filter, visits no segment; each new segment costs once
    /// what a query visiting it would (twice if some of its records are not active). It first
    /// forgets what segments no longer read gave.
    pub fn warm(&self) -> Result<(), SearchError> {
        let searcher = self.reader.searcher();
        let live: Vec<_> = searcher
            .segment_readers()
            .iter()
            .map(|r| (r.segment_id(), r.num_deleted_docs()))
            .collect();
        self.cache.keep_only(&live);
        let q = SearchQuery {
            limit: DEFAULT_LIMIT,
            ..SearchQuery::default()
        };
        let query = BooleanQuery::new(self.f.filters(&q));
        collect::collect(
            &searcher,
            &query,
            collect::Order::Newest,
            0,
            DEFAULT_LIMIT + 1,
            &self.cache,
            &|reader| self.f.keeps_whole(&q, reader),
        )?;
        // The entry of every document for the segments that view did not keep whole (some of
        // their records superseded or retracted): a query's count is made from it when the
        // query matches most of the segment.
        collect::collect(
            &searcher,
            &AllQuery,
            collect::Order::Newest,
            0,
            DEFAULT_LIMIT + 1,
            &self.cache,
            &|_| true,
        )?;
        Ok(())
    }

    /// What the per-segment result cache saved so far (`docs/SEARCH.md`, "Speed").
    pub fn cache_stats(&self) -> CacheStats {
        self.cache.stats()
    }

    /// Runs a search. Any text is a valid query: it is read as words (see docs/SEARCH.md).
    pub fn search(&self, q: &SearchQuery) -> Result<SearchResult, SearchError> {
        let raw = q.text.as_deref().unwrap_or("");
        if raw.chars().count() > MAX_QUERY_CHARS {
            return Err(SearchError::BadQuery(format!(
                "q: longer than {MAX_QUERY_CHARS} characters"
            )));
        }
        let searcher = self.reader.searcher();
        let expanded;
        let q = match self.f.with_lang_subtags(&searcher, q) {
            Some(e) => {
                expanded = e;
                &expanded
            }
            None => q,
        };
        // A word's folded form is always indexed when it is short enough (the form as written
        // beside it only when it differs): a word is too long when that one is.
        if analysis::words(raw)
            .iter()
            .any(|(_, _, w)| analysis::fold_word(w).len() >= MAX_TERM_BYTES)
        {
            // Every word must be found, and this one is in no record's words: nothing is, and
            // the reading says why (it was dropped, and the rest searched, or the filters
            // alone shown, as if it had not been typed).
            let reading = Reading {
                long_words: true,
                ..Reading::default()
            };
            return self.run(
                &searcher,
                q,
                self.f.filters(q),
                Some(Box::new(EmptyQuery)),
                None,
                reading,
            );
        }
        let glossary = self.glossary();
        let planner = plan::Planner::new(&self.index, &self.f, &glossary, &searcher, raw);
        let Some(planner) = planner else {
            // Text with nothing to search for (an emoji, punctuation) is left aside, and said so.
            let reading = Reading {
                no_words: !raw.is_empty() && !raw.chars().any(char::is_alphanumeric),
                ..Reading::default()
            };
            return self.run(&searcher, q, self.f.filters(q), None, None, reading);
        };
        let strict = planner.query(false);
        let reading = Reading {
            approximate: false,
            also: planner.also(),
            directions: planner.directions(),
            members: planner.members(),
            showing_for: None,
            no_words: false,
            long_words: false,
        };
        let first = self.run(
            &searcher,
            q,
            self.f.filters(q),
            Some(strict.query.box_clone()),
            Some(&strict),
            reading.clone(),
        )?;
        // Nothing as typed, and the text reads as whole words of the index on the other
        // keyboard layout ("ghfdbntkmcndj" for «правительство», "пщмуктьуте" for
        // "government"): what that reading finds, said so. Whole words only (the swapped text
        // is searched as finished, no word as a beginning) and three letters at least: a short
        // code missing from the index ("CN") is not read as the beginning of some other word.
        // Searched as typed: the other-layout reading is only offered.
        let mut layout_offer = None;
        if first.total == 0
            && let Some(swapped) = swap_layout(raw.trim())
                .or_else(|| self.swap_unknown_words(&searcher, q, raw.trim()))
            && swapped.chars().filter(|c| c.is_alphabetic()).count() >= 3
        {
            let whole = format!("{swapped} ");
            if self.count_of(&searcher, q, &whole)? > 0 {
                if q.as_typed {
                    layout_offer = Some(swapped);
                } else {
                    let mut other = self.search(&SearchQuery {
                        text: Some(whole),
                        ..q.clone()
                    })?;
                    other.reading.showing_for = Some(swapped.clone());
                    other.did_you_mean = Some(swapped);
                    return Ok(other);
                }
            }
        }
        if first.total >= plan::FEW || !planner.can_relax() {
            // Found as typed, through a word's beginnings or stem ("goverment", whose stem
            // begins *government*'s): a word no record holds still gets its correction offered.
            let mut first = first;
            if let Some(fixed) = planner.correction()
                && self.count_of(&searcher, q, &fixed)? > 0
            {
                first.did_you_mean = Some(fixed);
            }
            first.did_you_mean = first.did_you_mean.or(layout_offer);
            return Ok(first);
        }
        let relaxed = planner.query(true);
        // Exact and stemmed matches first: they score a constant far above any BM25 score.
        let ranked: Box<dyn Query> = Box::new(BooleanQuery::new(vec![
            (Occur::Should, strict.query.box_clone()),
            (
                Occur::Should,
                Box::new(tantivy::query::ConstScoreQuery::new(
                    strict.query.box_clone(),
                    plan::EXACT_FIRST,
                )),
            ),
            (Occur::Should, relaxed.query.box_clone()),
        ]));
        let mut second = self.run(
            &searcher,
            q,
            self.f.filters(q),
            Some(ranked),
            Some(&relaxed),
            Reading {
                approximate: true,
                ..reading
            },
        )?;
        if second.total == first.total {
            second.reading.approximate = false;
        }
        if let Some(fixed) = planner.correction()
            && let corrected_count = self.count_of(&searcher, q, &fixed)?
            && corrected_count > 0
        {
            if !q.as_typed && (second.total == 0 || corrected_count > second.total) {
                // Nothing found as typed, or fewer than the correction finds read strictly
                // (with its glossary terms and directions, which a misspelt word loses: "…
                // правителство" found two records, "… правительство" six): show what the
                // correction finds, and say so.
                let mut corrected = self.search(&SearchQuery {
                    text: Some(fixed.clone()),
                    ..q.clone()
                })?;
                corrected.reading.showing_for = Some(fixed.clone());
                corrected.did_you_mean = Some(fixed);
                return Ok(corrected);
            }
            second.did_you_mean = Some(fixed);
        }
        second.did_you_mean = second.did_you_mean.or(layout_offer);
        Ok(second)
    }

    /// A query of both alphabets with a word typed on the other layout ("правительство
    /// ghfdbntkmcndj", the layout switched in the middle): each word that finds nothing but
    /// reads, swapped, as a word that does, swapped; `None` when no word is.
    fn swap_unknown_words(
        &self,
        searcher: &tantivy::Searcher,
        q: &SearchQuery,
        text: &str,
    ) -> Option<String> {
        let words: Vec<&str> = text.split_whitespace().collect();
        if words.len() < 2 || words.len() > plan::MAX_QUERY_WORDS {
            return None;
        }
        let finds = |w: &str| {
            self.count_of(searcher, q, &format!("{w} "))
                .is_ok_and(|n| n > 0)
        };
        let mut changed = false;
        let mut out = Vec::with_capacity(words.len());
        for w in words {
            match swap_layout(w) {
                Some(s)
                    if s.chars().filter(|c| c.is_alphabetic()).count() >= 3
                        && !finds(w)
                        && finds(&s) =>
                {
                    changed = true;
                    out.push(s);
                }
                _ => out.push(w.to_string()),
            }
        }
        changed.then(|| out.join(" "))
    }

    /// How many records `text`, read strictly, finds with the filters of `q`.
    fn count_of(
        &self,
        searcher: &tantivy::Searcher,
        q: &SearchQuery,
        text: &str,
    ) -> Result<usize, SearchError> {
        let glossary = self.glossary();
        let Some(planner) = plan::Planner::new(&self.index, &self.f, &glossary, searcher, text)
        else {
            return Ok(0);
        };
        let mut clauses = self.f.filters(q);
        clauses.push((Occur::Must, planner.query(false).query));
        Ok(searcher.search(&BooleanQuery::new(clauses), &Count)?)
    }

    /// Runs one query: the page, the count, the facets and the snippets.
    fn run(
        &self,
        searcher: &tantivy::Searcher,
        q: &SearchQuery,
        mut clauses: Vec<(Occur, Box<dyn Query>)>,
        text: Option<Box<dyn Query>>,
        plan: Option<&plan::Planned>,
        reading: Reading,
    ) -> Result<SearchResult, SearchError> {
        // Heads only (exports, feeds): a page of up to MAX_HEADS_LIMIT, so an export of
        // 10,000 records is one search, not a hundred that each collect the pages before.
        let limit = q.limit.clamp(
            1,
            if q.heads_only {
                MAX_HEADS_LIMIT
            } else {
                MAX_LIMIT
            },
        );
        let has_text = text.is_some();
        if let Some(t) = text {
            clauses.push((Occur::Must, t));
        }
        let query: Box<dyn Query> = if clauses.is_empty() {
            Box::new(AllQuery)
        } else {
            Box::new(BooleanQuery::new(clauses))
        };
        let sort = q.sort.unwrap_or(if has_text {
            Sort::Relevance
        } else {
            Sort::Newest
        });
        let order = match sort {
            Sort::Relevance => collect::Order::Relevance,
            Sort::Newest => collect::Order::Newest,
            Sort::Oldest => collect::Order::Oldest,
            Sort::DocumentNewest => collect::Order::DocumentNewest,
            Sort::DocumentOldest => collect::Order::DocumentOldest,
        };
        let collect::Collected {
            addresses,
            total,
            facets: facet_map,
        } = collect::collect(
            searcher,
            query.as_ref(),
            order,
            q.offset,
            limit + 1,
            &self.cache,
            &|reader| !has_text && self.f.keeps_whole(q, reader),
        )?;
        let more = addresses.len() > limit;
        let mut snippets = plan.map(|p| self.snippet_generators(searcher, p));
        let mut hits = Vec::new();
        for addr in addresses.into_iter().take(limit) {
            let doc: TantivyDocument = searcher.doc(addr)?;
            let Some(json) = doc
                .get_first(self.f.doc)
                .and_then(|v| v.as_str().map(str::to_string))
            else {
                continue;
            };
            let Ok(mut rd) = serde_json::from_str::<RecordDoc>(&json) else {
                continue;
            };
            if q.heads_only {
                rd.body = BTreeMap::new();
                rd.attachments = Vec::new();
                hits.push(Hit {
                    doc: rd,
                    snippet: String::new(),
                    snippet_lang: None,
                });
                continue;
            }
            if let Some(t) = self.texts.as_ref().and_then(|s| s.long_texts(&rd.id)) {
                rd.body = t.body;
                rd.attachments = t.attachments;
            }
            let lang = plan.and_then(|p| p.lang).or(q.reader_lang.as_deref());
            let mut plain = PlainTexts::new(&rd);
            let (snippet, snippet_lang) = snippets
                .as_mut()
                .and_then(|g| best_passage(g, &mut plain, lang))
                .unwrap_or_else(|| summary_snippet(&mut plain, lang));
            drop(plain);
            // The long texts served the snippet and go: no answer shows them, and a page of a
            // hundred hits held up to a mebibyte of body and of files' text each until it was
            // written (four searches at once, half a gigabyte).
            rd.body = BTreeMap::new();
            rd.attachments = Vec::new();
            hits.push(Hit {
                doc: rd,
                snippet,
                snippet_lang,
            });
        }
        Ok(SearchResult {
            total,
            next_offset: more
                .then_some(q.offset.saturating_add(limit))
                .filter(|o| *o <= MAX_OFFSET),
            cut: more && q.offset.saturating_add(limit) > MAX_OFFSET,
            hits,
            facets: most_frequent(facet_map),
            did_you_mean: None,
            reading,
        })
    }

    /// A snippet generator per family, highlighting every term the query searched.
    fn snippet_generators(
        &self,
        searcher: &tantivy::Searcher,
        p: &plan::Planned,
    ) -> BTreeMap<Family, SnippetGenerator> {
        let mut out = BTreeMap::new();
        for family in Family::ALL {
            let field = self.f.text(family);
            // Every term the query searched in this family, weighed by how rare it is in the
            // bodies or in the titles and summaries, whichever holds it more: a word found only
            // in a summary is marked in the summary's passage (a generator built from the
            // bodies alone dropped it, and the snippet went unmarked, or to another language).
            let mut terms: BTreeMap<String, tantivy::Score> = BTreeMap::new();
            for (_, t) in p.highlight.iter().filter(|(f, _)| *f == family) {
                let df = [field, self.f.head(family)]
                    .iter()
                    .map(|f| {
                        searcher
                            .doc_freq(&Term::from_field_text(*f, t))
                            .unwrap_or(0)
                    })
                    .max()
                    .unwrap_or(0);
                if df > 0 {
                    terms.insert(t.clone(), 1.0 / (1.0 + df as tantivy::Score));
                }
            }
            if terms.is_empty() {
                continue;
            }
            let Ok(tokenizer) = searcher.index().tokenizer_for_field(field) else {
                continue;
            };
            out.insert(
                family,
                SnippetGenerator::new(terms, tokenizer, field, SNIPPET_CHARS),
            );
        }
        out
    }

    /// Completions of `prefix` (a query being typed): the last word completed from the words of
    /// titles, summaries and tags (most frequent first), direction names of the taxonomy that
    /// contain it, and titles of the best matching records.
    pub fn suggest(&self, prefix: &str) -> Result<Vec<Completion>, SearchError> {
        if prefix.chars().count() > MAX_QUERY_CHARS {
            return Err(SearchError::BadQuery(format!(
                "q: longer than {MAX_QUERY_CHARS} characters"
            )));
        }
        let searcher = self.reader.searcher();
        let mut out = plan::complete_words(&searcher, &self.f, prefix, 6);
        out.extend(self.glossary().directions_matching(prefix, 3));
        // Titles only: no record's text is read or cut into a snippet for a completion.
        let titles = self.search(&SearchQuery {
            text: Some(prefix.to_string()),
            limit: 3,
            heads_only: true,
            ..Default::default()
        })?;
        let lang = plan::query_lang(prefix);
        for h in titles.hits {
            out.push(Completion {
                text: h.doc.title_in(lang.unwrap_or(&h.doc.lang)).to_string(),
                kind: "title".into(),
                code: None,
                id: Some(h.doc.id.to_string()),
            });
        }
        let mut seen = std::collections::BTreeSet::new();
        out.retain(|c| seen.insert(c.text.to_lowercase()));
        out.truncate(MAX_COMPLETIONS);
        Ok(out)
    }
}

/// The languages a snippet is looked for in: the query's, the record's own, then the others.
fn snippet_langs<'a>(d: &'a RecordDoc, lang: Option<&'a str>) -> Vec<&'a str> {
    let mut langs: Vec<&str> = Vec::new();
    let present = |l: &str| d.summary.contains_key(l) || d.body.contains_key(l);
    if let Some(l) = lang {
        for k in d.summary.keys().chain(d.body.keys()) {
            if Family::of(k) == Family::of(l) && !langs.contains(&k.as_str()) && k.starts_with(l) {
                langs.push(k);
            }
        }
    }
    if present(&d.lang) && !langs.contains(&d.lang.as_str()) {
        langs.push(&d.lang);
    }
    for k in d.summary.keys().chain(d.body.keys()) {
        if !langs.contains(&k.as_str()) {
            langs.push(k);
        }
    }
    langs
}

/// The plain text of a record's summary and body in `lang`, from the first
/// [`SNIPPET_SOURCE_BYTES`] of each one's Markdown: a hostile body of a mebibyte of nested
/// quotes or emphasis (`>>>>…`, `*_*_…`) cost a tenth of a second to parse whole, for every hit
/// on every page that showed it.
fn plain_text(d: &RecordDoc, lang: &str) -> String {
    let mut s = String::new();
    if let Some(x) = d.summary.get(lang) {
        s.push_str(&analysis::markdown_to_plain(head_of(
            x,
            SNIPPET_SOURCE_BYTES,
        )));
        s.push('\n');
    }
    if let Some(x) = d.body.get(lang) {
        s.push_str(&analysis::markdown_to_plain(head_of(
            x,
            SNIPPET_SOURCE_BYTES,
        )));
    }
    s
}

/// A hit's plain texts by language, each parsed from its Markdown at most once for the hit's
/// snippet (the passage looked for, then the fallback).
struct PlainTexts<'a> {
    doc: &'a RecordDoc,
    parsed: BTreeMap<&'a str, String>,
}

impl<'a> PlainTexts<'a> {
    fn new(doc: &'a RecordDoc) -> Self {
        PlainTexts {
            doc,
            parsed: BTreeMap::new(),
        }
    }

    fn of(&mut self, lang: &'a str) -> &str {
        let doc = self.doc;
        self.parsed
            .entry(lang)
            .or_insert_with(|| plain_text(doc, lang))
    }
}

/// Bytes of a text (a language's summary and body, an attachment's text) a hit's snippet is
/// looked for in: a hundred hits of mebibyte records are not each tokenized whole for their
/// snippet. A word found only further on gives the summary as the snippet.
const SNIPPET_SOURCE_BYTES: usize = 64 * 1024;

/// Whether this process may write `dir` and read every file in it: the system's refusal is an
/// error naming the file, not damage to repair.
fn usable_dir(dir: &Path) -> Result<(), SearchError> {
    let refused =
        |path: &Path, e: std::io::Error| SearchError::Directory(format!("{}: {e}", path.display()));
    let probe = dir.join(".accord-write-check");
    std::fs::write(&probe, b"").map_err(|e| refused(dir, e))?;
    let _ = std::fs::remove_file(&probe);
    for entry in std::fs::read_dir(dir).map_err(|e| refused(dir, e))? {
        let path = entry.map_err(|e| refused(dir, e))?.path();
        if path.is_file() {
            std::fs::File::open(&path).map_err(|e| refused(&path, e))?;
        }
    }
    Ok(())
}

/// The first `n` bytes of `s`, cut at a character's boundary.
fn head_of(s: &str, n: usize) -> &str {
    if s.len() <= n {
        return s;
    }
    let mut end = n;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// The best passage with a matched word, in the query's language first, and the language of
/// the text it is cut from (`None` for a file's, whose language is only guessed by its script).
fn best_passage<'a>(
    generators: &mut BTreeMap<Family, SnippetGenerator>,
    plain: &mut PlainTexts<'a>,
    lang: Option<&'a str>,
) -> Option<(String, Option<String>)> {
    let d = plain.doc;
    snippet_langs(d, lang)
        .into_iter()
        .find_map(|l| {
            let g = generators.get_mut(&Family::of(l))?;
            let s = snippet_of(g, head_of(plain.of(l), SNIPPET_SOURCE_BYTES));
            (!s.highlighted().is_empty())
                .then(|| (s.to_html().replace('\n', " "), Some(l.to_string())))
        })
        .or_else(|| {
            // Only inside a file: the snippet names it.
            d.attachments.iter().find_map(|a| {
                let g = generators.get_mut(&Family::of(a.lang(&d.lang)))?;
                let s = snippet_of(g, head_of(&a.text, SNIPPET_SOURCE_BYTES));
                (!s.highlighted().is_empty()).then(|| {
                    let passage = format!(
                        "📎 {}: {}",
                        escape_html(&a.name),
                        s.to_html().replace('\n', " ")
                    );
                    (passage, None)
                })
            })
        })
}

/// The passage of `text` the generator picks, about [`SNIPPET_CHARS`] characters long in any
/// script: the generator counts bytes (Cyrillic and Armenian letters take two, Georgian three),
/// so its budget is the characters' worth of bytes at the beginning of the text.
fn snippet_of(g: &mut SnippetGenerator, text: &str) -> tantivy::snippet::Snippet {
    const SAMPLE_CHARS: usize = 1024;
    let (chars, bytes) = text
        .char_indices()
        .take(SAMPLE_CHARS)
        .fold((0usize, 0usize), |(n, _), (i, c)| (n + 1, i + c.len_utf8()));
    g.set_max_num_chars(SNIPPET_CHARS.saturating_mul(bytes.max(1)) / chars.max(1));
    g.snippet(text)
}

fn escape_html(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The summary (else the beginning of the body) as plain text, escaped, when nothing matched,
/// and the language it is in (`None` when there is no text).
fn summary_snippet<'a>(
    plain: &mut PlainTexts<'a>,
    lang: Option<&'a str>,
) -> (String, Option<String>) {
    let d = plain.doc;
    let langs = snippet_langs(d, lang);
    let (text, text_lang) = langs
        .iter()
        .find_map(|l| {
            d.summary
                .get(*l)
                .map(|s| (analysis::markdown_to_plain(s), Some(l.to_string())))
        })
        .or_else(|| {
            langs
                .first()
                .map(|l| (plain.of(l).to_string(), Some(l.to_string())))
        })
        .unwrap_or_default();
    let text_lang = text_lang.filter(|_| !text.trim().is_empty());
    let mut cut: String = text.chars().take(SNIPPET_CHARS).collect();
    if cut.len() < text.len() {
        if let Some(space) = cut.rfind(char::is_whitespace) {
            cut.truncate(space);
        }
        cut.push('…');
    }
    let html = cut
        .replace('\n', " ")
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;");
    (html, text_lang)
}
