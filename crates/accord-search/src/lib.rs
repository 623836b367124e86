//! `accord-search` owns the full-text index of records: a tantivy index derived from the store
//! (it can always be rebuilt from it). Text goes to a field per analyser: Russian (`ru`, Snowball
//! Russian stemmer), English (`en`, Snowball English stemmer) and every other language tag
//! (lower-cased words, no stemming, so `kk`, `hy`, `be`, `uz`… match exact words). Facets: member,
//! kind, direction, language, status, publisher, year; `created` is a fast field for ranges and
//! sorting.

#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

use std::collections::BTreeMap;
use std::ops::Bound;
use std::path::Path;

use accord_core::{ObjectId, Record, Timestamp};
use serde::{Deserialize, Serialize};
use tantivy::collector::{Count, FacetCollector, TopDocs};
use tantivy::query::{AllQuery, BooleanQuery, Occur, Query, QueryParser, RangeQuery, TermQuery};
use tantivy::schema::{
    FAST, Facet, FacetOptions, Field, INDEXED, IndexRecordOption, STORED, STRING, Schema,
    TextFieldIndexing, TextOptions, Value,
};
use tantivy::snippet::SnippetGenerator;
use tantivy::tokenizer::{
    Language, LowerCaser, RemoveLongFilter, SimpleTokenizer, Stemmer, TextAnalyzer,
};
use tantivy::{
    DocAddress, Index, IndexReader, IndexWriter, Order, ReloadPolicy, TantivyDocument, Term,
};
use thiserror::Error;

/// Longest query text accepted.
pub const MAX_QUERY_CHARS: usize = 512;
/// Most results per page.
pub const MAX_LIMIT: usize = 100;
/// Memory budget of the index writer.
const WRITER_HEAP: usize = 50 * 1024 * 1024;
/// Segments larger than this are not merged again, so that a merge (eight segments of one size
/// into one) never holds more than ~8 × this many documents: a merge into a segment of 820,000
/// documents took 1.8 GB for seconds (docs/BENCHMARKS.md, "At 1,000,000 records").
const MAX_DOCS_BEFORE_MERGE: usize = 25_000;

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
    /// Searchable text per language: summary, body and tags.
    pub text: BTreeMap<String, String>,
    pub status: String,
    pub publisher: String,
}

impl RecordDoc {
    /// Builds the document of a record with its derived status and publisher name.
    pub fn of(id: ObjectId, r: &Record, status: &str, publisher: &str) -> RecordDoc {
        let mut text: BTreeMap<String, String> = BTreeMap::new();
        for (lang, s) in r.summary.iter().chain(r.body.iter()) {
            let t = text.entry(lang.clone()).or_default();
            t.push_str(s);
            t.push('\n');
        }
        if !r.tags.is_empty() {
            let t = text.entry(r.lang.clone()).or_default();
            t.push_str(&r.tags.join(" "));
        }
        RecordDoc {
            id,
            created: r.created,
            member: r.member.to_string(),
            kind: r.kind.clone(),
            directions: r.directions.clone(),
            lang: r.lang.clone(),
            languages: r.languages(),
            title: r.title.clone(),
            text,
            status: status.to_string(),
            publisher: publisher.to_string(),
        }
    }
}

/// How results are ordered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Sort {
    /// Best match first (the default when there is query text).
    #[default]
    Relevance,
    Newest,
    Oldest,
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
    /// Empty means `active` only.
    pub statuses: Vec<String>,
    pub since: Option<Timestamp>,
    pub until: Option<Timestamp>,
    pub sort: Option<Sort>,
    pub limit: usize,
    pub offset: usize,
}

/// One result.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Hit {
    pub doc: RecordDoc,
    /// An HTML fragment with matched words in `<b>`; the record text is escaped.
    pub snippet: String,
}

/// A page of results.
#[derive(Debug, Clone)]
pub struct SearchResult {
    pub total: usize,
    pub hits: Vec<Hit>,
    /// Facet counts over the whole result set: facet → value → count.
    pub facets: BTreeMap<String, BTreeMap<String, u64>>,
    pub next_offset: Option<usize>,
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

#[derive(Debug, Clone, Copy)]
struct Fields {
    id: Field,
    created: Field,
    facet: Field,
    doc: Field,
    title_ru: Field,
    title_en: Field,
    title_any: Field,
    text_ru: Field,
    text_en: Field,
    text_any: Field,
}

fn schema() -> (Schema, Fields) {
    let mut b = Schema::builder();
    // Indexed, not stored: the whole document is stored once, as `doc` (snippets are cut
    // from it), so storing the text fields too doubled the document store and its merges.
    let text = |tokenizer: &str| {
        TextOptions::default().set_indexing_options(
            TextFieldIndexing::default()
                .set_tokenizer(tokenizer)
                .set_index_option(IndexRecordOption::WithFreqsAndPositions),
        )
    };
    let f = Fields {
        id: b.add_text_field("id", STRING | STORED),
        created: b.add_u64_field("created", INDEXED | FAST | STORED),
        facet: b.add_facet_field("facet", FacetOptions::default()),
        doc: b.add_text_field("doc", STORED),
        title_ru: b.add_text_field("title_ru", text("accord_ru")),
        title_en: b.add_text_field("title_en", text("accord_en")),
        title_any: b.add_text_field("title_any", text("accord_any")),
        text_ru: b.add_text_field("text_ru", text("accord_ru")),
        text_en: b.add_text_field("text_en", text("accord_en")),
        text_any: b.add_text_field("text_any", text("accord_any")),
    };
    (b.build(), f)
}

fn register_tokenizers(index: &Index) {
    let m = index.tokenizers();
    let base = || {
        TextAnalyzer::builder(SimpleTokenizer::default())
            .filter(RemoveLongFilter::limit(64))
            .filter(LowerCaser)
    };
    m.register(
        "accord_ru",
        base().filter(Stemmer::new(Language::Russian)).build(),
    );
    m.register(
        "accord_en",
        base().filter(Stemmer::new(Language::English)).build(),
    );
    m.register("accord_any", base().build());
}

/// The index. Queries may run from any thread; writing is `&mut`.
pub struct SearchIndex {
    index: Index,
    reader: IndexReader,
    writer: IndexWriter,
    f: Fields,
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

impl SearchIndex {
    /// Opens the index in `dir`, creating it if missing. An index that cannot be opened (corrupt,
    /// another schema) is wiped and created empty; the caller rebuilds it from the store.
    pub fn open(dir: &Path) -> Result<SearchIndex, SearchError> {
        std::fs::create_dir_all(dir)
            .map_err(|e| SearchError::Directory(format!("{}: {e}", dir.display())))?;
        let (schema, f) = schema();
        let index = match tantivy::directory::MmapDirectory::open(dir)
            .map_err(|e| SearchError::Directory(e.to_string()))
            .and_then(|d| Index::open_or_create(d, schema.clone()).map_err(SearchError::from))
        {
            Ok(i) => i,
            Err(e) => {
                tracing::warn!(error = %e, dir = %dir.display(), "search index unusable: recreating it");
                std::fs::remove_dir_all(dir).map_err(|e| SearchError::Directory(e.to_string()))?;
                std::fs::create_dir_all(dir).map_err(|e| SearchError::Directory(e.to_string()))?;
                Index::create_in_dir(dir, schema)?
            }
        };
        Self::with_index(index, f)
    }

    /// An index in memory (tests).
    pub fn in_memory() -> Result<SearchIndex, SearchError> {
        let (schema, f) = schema();
        Self::with_index(Index::create_in_ram(schema), f)
    }

    fn with_index(index: Index, f: Fields) -> Result<SearchIndex, SearchError> {
        register_tokenizers(&index);
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()?;
        let writer = index.writer(WRITER_HEAP)?;
        let mut merges = tantivy::indexer::LogMergePolicy::default();
        merges.set_max_docs_before_merge(MAX_DOCS_BEFORE_MERGE);
        writer.set_merge_policy(Box::new(merges));
        Ok(SearchIndex {
            index,
            reader,
            writer,
            f,
        })
    }

    /// A handle for queries from other threads.
    pub fn searcher(&self) -> Searcher {
        Searcher {
            index: self.index.clone(),
            reader: self.reader.clone(),
            f: self.f,
        }
    }

    pub fn num_docs(&self) -> u64 {
        self.reader.searcher().num_docs()
    }

    /// Adds or replaces documents (by id). Visible after [`Self::commit`].
    pub fn upsert(&mut self, docs: &[RecordDoc]) -> Result<(), SearchError> {
        let f = self.f;
        for d in docs {
            let id = d.id.to_string();
            self.writer.delete_term(Term::from_field_text(f.id, &id));
            let mut doc = TantivyDocument::new();
            doc.add_text(f.id, &id);
            doc.add_u64(f.created, d.created.0);
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
            doc.add_text(f.doc, serde_json::to_string(d).unwrap_or_default());
            for (lang, t) in &d.title {
                doc.add_text(self.title_field(lang), t);
            }
            for (lang, t) in &d.text {
                doc.add_text(self.text_field(lang), t);
            }
            self.writer.add_document(doc)?;
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
        let mut prepared = self.writer.prepare_commit()?;
        prepared.set_payload(&mark.to_string());
        prepared.commit()?;
        self.reader.reload()?;
        Ok(())
    }

    /// The mark of the last [`Self::commit_at`], if the index has one.
    pub fn mark(&self) -> Option<u64> {
        self.index.load_metas().ok()?.payload?.parse().ok()
    }

    fn title_field(&self, lang: &str) -> Field {
        title_field(&self.f, lang)
    }

    fn text_field(&self, lang: &str) -> Field {
        text_field(&self.f, lang)
    }
}

/// The field a title in `lang` is indexed in.
fn title_field(f: &Fields, lang: &str) -> Field {
    match primary(lang) {
        "ru" => f.title_ru,
        "en" => f.title_en,
        _ => f.title_any,
    }
}

/// The field a text (summary, body, tags) in `lang` is indexed in.
fn text_field(f: &Fields, lang: &str) -> Field {
    match primary(lang) {
        "ru" => f.text_ru,
        "en" => f.text_en,
        _ => f.text_any,
    }
}

/// What a record put into `field`: the titles or texts of the languages indexed there.
fn field_text(f: &Fields, field: Field, d: &RecordDoc) -> String {
    let from = |map: &BTreeMap<String, String>, pick: fn(&Fields, &str) -> Field| {
        map.iter()
            .filter(|(lang, _)| pick(f, lang) == field)
            .map(|(_, t)| t.as_str())
            .collect::<Vec<_>>()
            .join("\n")
    };
    if [f.title_ru, f.title_en, f.title_any].contains(&field) {
        from(&d.title, title_field)
    } else {
        from(&d.text, text_field)
    }
}

fn primary(lang: &str) -> &str {
    lang.split('-').next().unwrap_or(lang)
}

/// Runs queries; cheap to clone and usable from any thread.
#[derive(Clone)]
pub struct Searcher {
    index: Index,
    reader: IndexReader,
    f: Fields,
}

impl std::fmt::Debug for Searcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Searcher")
    }
}

impl Searcher {
    /// Number of indexed records.
    pub fn num_docs(&self) -> u64 {
        self.reader.searcher().num_docs()
    }

    /// Runs a search. Query text is parsed leniently: any text is a valid query.
    pub fn search(&self, q: &SearchQuery) -> Result<SearchResult, SearchError> {
        let f = self.f;
        let text = q.text.as_deref().map(str::trim).filter(|t| !t.is_empty());
        if let Some(t) = text
            && t.chars().count() > MAX_QUERY_CHARS
        {
            return Err(SearchError::BadQuery(format!(
                "q: longer than {MAX_QUERY_CHARS} characters"
            )));
        }
        let limit = q.limit.clamp(1, MAX_LIMIT);
        let mut clauses: Vec<(Occur, Box<dyn Query>)> = Vec::new();
        let mut text_query: Option<Box<dyn Query>> = None;
        if let Some(t) = text {
            let fields = vec![
                f.title_ru,
                f.title_en,
                f.title_any,
                f.text_ru,
                f.text_en,
                f.text_any,
            ];
            let mut parser = QueryParser::for_index(&self.index, fields);
            parser.set_conjunction_by_default();
            for t in [f.title_ru, f.title_en, f.title_any] {
                parser.set_field_boost(t, 2.0);
            }
            // Query syntax characters are taken as plain words.
            let cleaned: String = t
                .chars()
                .map(|c| {
                    if c.is_alphanumeric() || c.is_whitespace() || c == '-' {
                        c
                    } else {
                        ' '
                    }
                })
                .collect();
            let (query, _errors) = parser.parse_query_lenient(&cleaned);
            clauses.push((Occur::Must, query.box_clone()));
            text_query = Some(query);
        }
        let statuses = if q.statuses.is_empty() {
            vec!["active".to_string()]
        } else {
            q.statuses.clone()
        };
        for (kind, values) in [
            ("member", &q.members),
            ("kind", &q.kinds),
            ("direction", &q.directions),
            ("lang", &q.langs),
            ("publisher", &q.publishers),
            ("status", &statuses),
        ] {
            if values.is_empty() {
                continue;
            }
            let any: Vec<(Occur, Box<dyn Query>)> = values
                .iter()
                .map(|v| {
                    let term = Term::from_facet(f.facet, &facet(kind, v));
                    (
                        Occur::Should,
                        Box::new(TermQuery::new(term, IndexRecordOption::Basic)) as Box<dyn Query>,
                    )
                })
                .collect();
            clauses.push((Occur::Must, Box::new(BooleanQuery::new(any))));
        }
        if q.since.is_some() || q.until.is_some() {
            let lo = q.since.map_or(Bound::Unbounded, |t| {
                Bound::Included(Term::from_field_u64(f.created, t.0))
            });
            let hi = q.until.map_or(Bound::Unbounded, |t| {
                Bound::Excluded(Term::from_field_u64(f.created, t.0))
            });
            clauses.push((Occur::Must, Box::new(RangeQuery::new(lo, hi))));
        }
        let query: Box<dyn Query> = if clauses.is_empty() {
            Box::new(AllQuery)
        } else {
            Box::new(BooleanQuery::new(clauses))
        };
        let searcher = self.reader.searcher();
        let mut facets = FacetCollector::for_field("facet");
        for name in FACETS {
            facets.add_facet(Facet::from_path([name]));
        }
        let sort = q.sort.unwrap_or(if text.is_some() {
            Sort::Relevance
        } else {
            Sort::Newest
        });
        let top = TopDocs::with_limit(limit + 1).and_offset(q.offset);
        let (addresses, total, facet_counts): (Vec<DocAddress>, usize, _) = match sort {
            Sort::Relevance => {
                let (docs, total, fc) =
                    searcher.search(&query, &(top.order_by_score(), Count, facets))?;
                (docs.into_iter().map(|(_, a)| a).collect(), total, fc)
            }
            Sort::Newest | Sort::Oldest => {
                let order = if sort == Sort::Newest {
                    Order::Desc
                } else {
                    Order::Asc
                };
                let (docs, total, fc) = searcher.search(
                    &query,
                    &(
                        top.order_by_fast_field::<u64>("created", order),
                        Count,
                        facets,
                    ),
                )?;
                (docs.into_iter().map(|(_, a)| a).collect(), total, fc)
            }
        };
        let mut facet_map = BTreeMap::new();
        for name in FACETS {
            let counts: BTreeMap<String, u64> = facet_counts
                .get(Facet::from_path([name]))
                .map(|(fc, n)| {
                    (
                        fc.to_path()
                            .last()
                            .map(|s| s.to_string())
                            .unwrap_or_default(),
                        n,
                    )
                })
                .collect();
            facet_map.insert(name.to_string(), counts);
        }
        let more = addresses.len() > limit;
        let snippets: Vec<(Field, SnippetGenerator)> = match &text_query {
            Some(tq) => [
                f.title_ru,
                f.text_ru,
                f.text_en,
                f.text_any,
                f.title_en,
                f.title_any,
            ]
            .into_iter()
            .filter_map(|field| {
                let mut g = SnippetGenerator::create(&searcher, tq.as_ref(), field).ok()?;
                g.set_max_num_chars(240);
                Some((field, g))
            })
            .collect(),
            None => Vec::new(),
        };
        let mut hits = Vec::new();
        for addr in addresses.into_iter().take(limit) {
            let doc: TantivyDocument = searcher.doc(addr)?;
            let Some(json) = doc
                .get_first(f.doc)
                .and_then(|v| v.as_str().map(str::to_string))
            else {
                continue;
            };
            let Ok(rd) = serde_json::from_str::<RecordDoc>(&json) else {
                continue;
            };
            let snippet = snippets
                .iter()
                .map(|(field, g)| g.snippet(&field_text(&f, *field, &rd)))
                .find(|s| !s.highlighted().is_empty())
                .map(|s| s.to_html())
                .unwrap_or_else(|| plain_snippet(&rd));
            hits.push(Hit { doc: rd, snippet });
        }
        Ok(SearchResult {
            total,
            next_offset: more.then_some(q.offset + limit),
            hits,
            facets: facet_map,
        })
    }
}

/// The beginning of the summary or body, HTML-escaped, when no word was highlighted.
fn plain_snippet(d: &RecordDoc) -> String {
    let text = d
        .text
        .get(&d.lang)
        .or_else(|| d.text.values().next())
        .map(String::as_str)
        .unwrap_or("");
    let cut: String = text.chars().take(240).collect();
    cut.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}
