//! One pass per segment over a query's matching documents, yielding the page (the best `k` by a
//! sort key), the number of matches and the facet counts — with a cache of what each segment
//! gave.
//!
//! A segment never changes once written, except that documents in it can be deleted (a record
//! superseded or retracted is deleted and indexed again elsewhere), and deletions only grow. So
//! what a query matched in a segment is fully determined by the segment's id, its number of
//! deleted documents and the query: the count, the facet counts and, for the date orders, the
//! segment's best `k` are cached under that key and reused until the segment is merged away or
//! loses a document. A query over a million records then costs the segments written since it was
//! last asked (a commit every fraction of a second while the node ingests), not the million.
//!
//! Relevance pages depend on more than the segment: BM25 weighs a term by statistics of the whole
//! index (how many documents hold it, the average length of a field), which change with every
//! commit. Ranking reads them through [`Statistics`], which rounds them to about 2 % (a term's
//! share of the documents and a field's average length on a logarithmic grid, the number of
//! documents to three significant bits; exact below 1,024 documents), and every value it gave is
//! part of the key of a ranked page. While the index grows with documents like those it holds,
//! the rounded statistics, and so the cached pages, stay the same; when they move, every ranked
//! page is computed again with them. A result therefore never depends on what was asked before.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use tantivy::index::SegmentId;
use tantivy::query::{Bm25StatisticsProvider, EnableScoring, Query, Weight};
use tantivy::schema::Facet;
use tantivy::{DocAddress, DocId, Score, SegmentReader};

use crate::{FACETS, SearchError};

/// Most bytes (estimated) the cache of one searcher holds; the least recently used entries go
/// first. About 2 KB per segment and query for the facet counts and 24 bytes per page entry: at
/// a million records (~40 segments) this holds ~60 different queries' results.
pub(crate) const CACHE_BYTES: usize = 8 << 20;

/// The order of a page.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Order {
    /// BM25 rounded to 1/10,000 (so that float noise does not decide), then newest first.
    Relevance,
    Newest,
    Oldest,
    /// By the source document's date (the record's `date`), latest first; records without one
    /// after all that have one; newer records first among equals.
    DocumentNewest,
    /// By the source document's date, earliest first; records without one last.
    DocumentOldest,
}

impl Order {
    /// Whether the order reads the documents' dates.
    fn by_document(self) -> bool {
        matches!(self, Order::DocumentNewest | Order::DocumentOldest)
    }
}

/// What decides a document's place on the page: greater is better.
type SortKey = (i64, u64);

/// Facet counts: (facet index in [`FACETS`], value, count).
type FacetCounts = Vec<(usize, String, u64)>;

/// What one segment gave: its matches, their facet counts.
#[derive(Debug)]
struct Stats {
    count: u64,
    facets: FacetCounts,
}

impl Stats {
    fn bytes(&self) -> usize {
        64 + self
            .facets
            .iter()
            .map(|(_, v, _)| v.len() + 48)
            .sum::<usize>()
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Key {
    segment: SegmentId,
    deleted: u32,
    /// The SHA-256 of the query's description: a hostile query of thousands of clauses (600 KB
    /// described) costs an entry no more than any other, where its text as the key pushed
    /// every analyst's cached pages out.
    query: QueryKey,
    /// `None` for the count and facets; for a page its order, `k` and the fingerprint of the
    /// statistics it was ranked with (0 for the date orders).
    page: Option<(Order, usize, u64)>,
}

/// What identifies a query in the cache (see [`Key::query`]).
type QueryKey = [u8; 32];

/// The cache key of the query `description` describes.
fn query_key(description: &str) -> QueryKey {
    accord_core::ObjectId::of_body(description.as_bytes()).0
}

#[derive(Clone, Debug)]
enum Value {
    Stats(Arc<Stats>),
    Page(Arc<Vec<(SortKey, DocId)>>),
}

impl Value {
    fn bytes(&self) -> usize {
        match self {
            Value::Stats(s) => s.bytes(),
            Value::Page(p) => 64 + p.len() * 24,
        }
    }
}

#[derive(Default)]
struct Inner {
    entries: HashMap<Key, (Value, u64)>,
    bytes: usize,
    tick: u64,
}

/// Per-segment results of earlier queries, bounded by [`CACHE_BYTES`].
pub(crate) struct PageCache {
    inner: Mutex<Inner>,
    limit: usize,
    hits: AtomicU64,
    visits: AtomicU64,
    facet_reads: AtomicU64,
}

/// What the cache of a searcher saved, since it was made.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Segments whose page, count and facets came from the cache.
    pub hits: u64,
    /// Segments whose matching documents were visited.
    pub visits: u64,
    /// Documents whose facet values those visits read.
    pub facet_reads: u64,
}

impl PageCache {
    pub(crate) fn new(limit: usize) -> PageCache {
        PageCache {
            inner: Mutex::default(),
            limit,
            hits: AtomicU64::new(0),
            visits: AtomicU64::new(0),
            facet_reads: AtomicU64::new(0),
        }
    }

    pub(crate) fn stats(&self) -> CacheStats {
        CacheStats {
            hits: self.hits.load(Ordering::Relaxed),
            visits: self.visits.load(Ordering::Relaxed),
            facet_reads: self.facet_reads.load(Ordering::Relaxed),
        }
    }

    fn get(&self, key: &Key) -> Option<Value> {
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        inner.tick += 1;
        let tick = inner.tick;
        let (value, used) = inner.entries.get_mut(key)?;
        *used = tick;
        Some(value.clone())
    }

    fn put(&self, key: Key, value: Value) {
        let size = value.bytes() + std::mem::size_of::<QueryKey>();
        if size > self.limit / 4 {
            return;
        }
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        inner.tick += 1;
        let tick = inner.tick;
        if let Some((old, _)) = inner.entries.insert(key.clone(), (value, tick)) {
            inner.bytes -= old.bytes() + std::mem::size_of::<QueryKey>();
        }
        inner.bytes += size;
        if inner.bytes > self.limit {
            // Least recently used first, down to three quarters of the limit.
            let mut by_use: Vec<(u64, Key)> = inner
                .entries
                .iter()
                .map(|(k, (_, used))| (*used, k.clone()))
                .collect();
            by_use.sort_unstable_by_key(|(used, _)| *used);
            for (_, k) in by_use {
                if inner.bytes <= self.limit / 4 * 3 {
                    break;
                }
                if let Some((v, _)) = inner.entries.remove(&k) {
                    inner.bytes -= v.bytes() + std::mem::size_of::<QueryKey>();
                }
            }
        }
    }

    /// Forgets what segments other than `live` gave (merged away, or older versions of a
    /// segment that has lost documents since): none of it can be asked again once every
    /// searcher reads the index as `live` does. The indexer's filling after each commit would
    /// otherwise keep the cache at its bound with entries of segments merged away.
    pub(crate) fn keep_only(&self, live: &[(SegmentId, u32)]) {
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        let mut freed = 0;
        inner.entries.retain(|k, (v, _)| {
            let keep = live.contains(&(k.segment, k.deleted));
            if !keep {
                freed += v.bytes() + std::mem::size_of::<QueryKey>();
            }
            keep
        });
        inner.bytes -= freed;
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.inner
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entries
            .len()
    }
}

/// A query's page, count and facet counts.
pub(crate) struct Collected {
    pub addresses: Vec<DocAddress>,
    pub total: usize,
    pub facets: BTreeMap<String, BTreeMap<String, u64>>,
}

/// The cache key of the query that matches every live document: what a segment gave it serves
/// every date-ordered query that keeps the whole segment.
const EVERY_DOCUMENT: &str = "*every document*";

/// Runs `query` over every segment of `searcher`: the best `k` documents in `order` (skipping
/// `offset` of them), the number of matches and the facet counts, taking what it can from
/// `cache`.
///
/// `keeps_whole(segment)` tells that the query matches every document of that segment (filters
/// that every document there meets): a date-ordered query then takes that segment's count,
/// facets and page from what the query of every document gave, and the first run of any such
/// filter over a million records costs what the segments it cuts cost. Ranked pages never
/// share: their scores depend on the query. Any other query whose count a segment lacks makes
/// it, when the cache holds that segment's entry of every document, from the smaller side:
/// the facet values of its matches, or of the live documents it leaves out (see
/// [`Counting::From`]).
pub(crate) fn collect(
    searcher: &tantivy::Searcher,
    query: &dyn Query,
    order: Order,
    offset: usize,
    k: usize,
    cache: &PageCache,
    keeps_whole: &dyn Fn(&SegmentReader) -> bool,
) -> Result<Collected, SearchError> {
    let key = query_key(&format!("{query:?}"));
    let every = query_key(EVERY_DOCUMENT);
    let want = offset.saturating_add(k);
    // A ranked page needs the weight (and so the statistics) before the cache can be asked.
    let mut weight: Option<Box<dyn Weight>> = None;
    let mut fingerprint = 0;
    if order == Order::Relevance {
        let stats = Statistics::new(searcher);
        weight = Some(
            query.weight(EnableScoring::enabled_from_statistics_provider(
                &stats, searcher,
            ))?,
        );
        fingerprint = stats.fingerprint();
    }
    // What the cache holds for each segment, and the segments to visit.
    let readers = searcher.segment_readers();
    let mut found: Vec<Option<Segment>> = Vec::new();
    let mut to_visit: Vec<ToVisit> = Vec::new();
    for (i, reader) in readers.iter().enumerate() {
        let whole = order != Order::Relevance && keeps_whole(reader);
        let stats_key = Key {
            segment: reader.segment_id(),
            deleted: reader.num_deleted_docs(),
            query: if whole { every } else { key },
            page: None,
        };
        let page_key = Key {
            page: Some((order, want, fingerprint)),
            ..stats_key.clone()
        };
        let cached_stats = match cache.get(&stats_key) {
            Some(Value::Stats(s)) => Some(s),
            _ => None,
        };
        let cached_page = match cache.get(&page_key) {
            Some(Value::Page(p)) => Some(p),
            _ => None,
        };
        match (cached_stats, cached_page) {
            (Some(s), Some(p)) => {
                cache.hits.fetch_add(1, Ordering::Relaxed);
                found.push(Some((s, p)));
            }
            (cached_stats, _) => {
                cache.visits.fetch_add(1, Ordering::Relaxed);
                found.push(None);
                // What every document of the segment gave, when the count is to be made and
                // the cache holds that: the count's facets can then come from the documents
                // the query leaves out (see `Counting::From`).
                let every_stats = match (&cached_stats, whole) {
                    (None, false) => match cache.get(&Key {
                        query: every,
                        ..stats_key.clone()
                    }) {
                        Some(Value::Stats(s)) => Some(s),
                        _ => None,
                    },
                    _ => None,
                };
                to_visit.push(ToVisit {
                    index: i,
                    whole,
                    cached_stats,
                    every_stats,
                    stats_key,
                    page_key,
                });
            }
        }
    }
    if !to_visit.is_empty() {
        let w = match weight {
            Some(w) => w,
            None => query.weight(EnableScoring::disabled_from_searcher(searcher))?,
        };
        // The query of every document, for the segments the query keeps whole.
        let all = if to_visit.iter().any(|v| v.whole) {
            let every = EnableScoring::disabled_from_searcher(searcher);
            Some(tantivy::query::AllQuery.weight(every)?)
        } else {
            None
        };
        let run = |v: &ToVisit| -> Result<Segment, SearchError> {
            let reader = &readers[v.index];
            let counting = match (&v.cached_stats, &v.every_stats) {
                (Some(_), _) => Counting::No,
                (None, Some(every)) => Counting::From(every.clone()),
                (None, None) => Counting::Direct(Box::new(SegmentFacets::new(reader)?)),
            };
            let w = match (v.whole, &all) {
                (true, Some(all)) => all.as_ref(),
                _ => w.as_ref(),
            };
            let Visited {
                page: seg_page,
                counted,
                reads,
            } = visit(w, reader, order, want, counting)?;
            cache.facet_reads.fetch_add(reads, Ordering::Relaxed);
            let (cached_stats, stats_key, page_key) = (&v.cached_stats, &v.stats_key, &v.page_key);
            let seg_stats = match (cached_stats, counted) {
                (Some(s), _) => s.clone(),
                (None, Some((count, facets))) => {
                    let s = Arc::new(Stats { count, facets });
                    cache.put(stats_key.clone(), Value::Stats(s.clone()));
                    s
                }
                (None, None) => Arc::new(Stats {
                    count: 0,
                    facets: Vec::new(),
                }),
            };
            let seg_page = Arc::new(seg_page);
            cache.put(page_key.clone(), Value::Page(seg_page.clone()));
            Ok((seg_stats, seg_page))
        };
        for (slot, result) in visit_all(readers, &to_visit, &run) {
            found[slot] = Some(result?);
        }
    }
    let mut page: Vec<(SortKey, u32, DocId)> = Vec::new();
    let mut total = 0u64;
    let mut facets: BTreeMap<(usize, String), u64> = BTreeMap::new();
    for (ord, segment) in found.into_iter().enumerate() {
        let Some((seg_stats, seg_page)) = segment else {
            continue;
        };
        total += seg_stats.count;
        for (i, v, n) in &seg_stats.facets {
            *facets.entry((*i, v.clone())).or_default() += n;
        }
        page.extend(seg_page.iter().map(|(key, doc)| (*key, ord as u32, *doc)));
    }
    // Better first; among equals the earlier segment and document, as tantivy orders them.
    page.sort_unstable_by(|a, b| b.0.cmp(&a.0).then((a.1, a.2).cmp(&(b.1, b.2))));
    let addresses = page
        .into_iter()
        .skip(offset)
        .take(k)
        .map(|(_, seg, doc)| DocAddress::new(seg, doc))
        .collect();
    let mut by_facet: BTreeMap<String, BTreeMap<String, u64>> = FACETS
        .iter()
        .map(|name| (name.to_string(), BTreeMap::new()))
        .collect();
    for ((i, v), n) in facets {
        if let Some(m) = FACETS.get(i).and_then(|name| by_facet.get_mut(*name)) {
            m.insert(v, n);
        }
    }
    Ok(Collected {
        addresses,
        total: usize::try_from(total).unwrap_or(usize::MAX),
        facets: by_facet,
    })
}

/// What one segment gave a query: its count and facets, and its best documents.
type Segment = (Arc<Stats>, Arc<Vec<(SortKey, DocId)>>);
/// A segment to visit.
struct ToVisit {
    /// Its index among the searcher's segments.
    index: usize,
    /// Whether the query keeps it whole (then every document is visited).
    whole: bool,
    /// The count and facets the cache already holds.
    cached_stats: Option<Arc<Stats>>,
    /// What every document of the segment gave, when the count is to be made and the cache
    /// holds that.
    every_stats: Option<Arc<Stats>>,
    /// The cache keys of its count and of its page.
    stats_key: Key,
    page_key: Key,
}

/// Segments to visit holding fewer documents than this in all are visited on the calling thread:
/// below it (about a millisecond of work) a second thread costs more than it saves.
const PARALLEL_FROM_DOCS: u32 = 16_384;
/// Most threads that visit the segments of one query.
const MAX_VISITORS: usize = 4;

/// Runs `run` on each segment of `to_visit` (its index in `readers` first), on up to
/// [`MAX_VISITORS`] threads (no more than the machine's cores) when there is enough to share,
/// the largest segments first; returns each result with its segment's index.
fn visit_all<F>(
    readers: &[SegmentReader],
    to_visit: &[ToVisit],
    run: &F,
) -> Vec<(usize, Result<Segment, SearchError>)>
where
    F: Fn(&ToVisit) -> Result<Segment, SearchError> + Sync,
{
    let docs: u32 = to_visit
        .iter()
        .map(|v| readers[v.index].max_doc())
        .fold(0, u32::saturating_add);
    let threads = std::thread::available_parallelism()
        .map_or(1, std::num::NonZeroUsize::get)
        .min(MAX_VISITORS)
        .min(to_visit.len());
    if threads < 2 || docs < PARALLEL_FROM_DOCS {
        return to_visit.iter().map(|v| (v.index, run(v))).collect();
    }
    let mut order: Vec<&ToVisit> = to_visit.iter().collect();
    order.sort_by_key(|v| std::cmp::Reverse(readers[v.index].max_doc()));
    let next = std::sync::atomic::AtomicUsize::new(0);
    let work = || {
        let mut out = Vec::new();
        while let Some(v) = order.get(next.fetch_add(1, Ordering::Relaxed)) {
            out.push((v.index, run(v)));
        }
        out
    };
    std::thread::scope(|scope| {
        let helpers: Vec<_> = (1..threads).map(|_| scope.spawn(work)).collect();
        let mut out = work();
        for h in helpers {
            match h.join() {
                Ok(mut part) => out.append(&mut part),
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
        out
    })
}

/// Below this many documents ranking reads exact statistics.
const EXACT_BELOW: u64 = 1024;

/// Ratio of one step of the logarithmic grid the statistics are rounded to.
const GRID: f64 = 1.02;

/// The number of documents ranking reads: exact below [`EXACT_BELOW`], else its three most
/// significant bits.
fn rounded_docs(exact: u64) -> u64 {
    if exact < EXACT_BELOW {
        return exact;
    }
    let shift = 64 - exact.leading_zeros() - 3;
    (exact >> shift) << shift
}

/// `ratio` (positive) rounded to the nearest point of the logarithmic grid of step [`GRID`].
fn on_grid(ratio: f64) -> f64 {
    GRID.powf((ratio.ln() / GRID.ln()).round())
}

/// BM25 statistics of a searcher, rounded (see the module's documentation), remembering every
/// value it gave.
struct Statistics<'a> {
    searcher: &'a tantivy::Searcher,
    docs: u64,
    given: Mutex<std::collections::hash_map::DefaultHasher>,
}

impl<'a> Statistics<'a> {
    fn new(searcher: &'a tantivy::Searcher) -> Statistics<'a> {
        let docs = rounded_docs(searcher.num_docs());
        Statistics {
            searcher,
            docs,
            given: Mutex::default(),
        }
    }

    /// `part` of every document (a term's documents, a field's tokens), scaled to the rounded
    /// number of documents.
    fn scaled(&self, part: u64) -> u64 {
        let exact = self.searcher.num_docs();
        if exact < EXACT_BELOW || part == 0 {
            return part;
        }
        ((self.docs as f64 * on_grid(part as f64 / exact as f64)).round() as u64).max(1)
    }

    fn give(&self, what: u8, v: u64) -> u64 {
        use std::hash::Hash;
        let mut h = self.given.lock().unwrap_or_else(PoisonError::into_inner);
        (what, v).hash(&mut *h);
        v
    }

    fn fingerprint(&self) -> u64 {
        use std::hash::Hasher;
        self.given
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .finish()
    }
}

impl Bm25StatisticsProvider for Statistics<'_> {
    fn total_num_tokens(&self, field: tantivy::schema::Field) -> tantivy::Result<u64> {
        let exact = self.searcher.total_num_tokens(field)?;
        Ok(self.give(0, self.scaled(exact)))
    }

    fn total_num_docs(&self) -> tantivy::Result<u64> {
        Ok(self.give(1, self.docs))
    }

    fn doc_freq(&self, term: &tantivy::Term) -> tantivy::Result<u64> {
        let exact = self.searcher.doc_freq(term)?;
        Ok(self.give(2, self.scaled(exact).min(self.docs)))
    }
}

/// Documents whose facet values [`SegmentFacets`] reads at once.
const FACET_BLOCK: usize = 64;

/// The facet counts of one segment's matching documents. Tantivy's facet collector reads a
/// document's values one by one, each through a virtual call (with the column's index, 60 % of
/// a query's first run at a million records); this reads the values of [`FACET_BLOCK`]
/// documents with one call.
struct SegmentFacets {
    column: tantivy::columnar::StrColumn,
    /// Matching documents not yet read.
    pending: Vec<DocId>,
    docs: Vec<DocId>,
    rows: Vec<u32>,
    values: Vec<u64>,
    /// Documents counted per facet ordinal of the segment.
    counts: Vec<u64>,
    /// The last document counted per ordinal, plus one (0: none): a value a document holds
    /// twice counts once, as with tantivy's collector.
    last: Vec<u32>,
    /// Documents whose values were read.
    reads: u64,
}

impl SegmentFacets {
    fn new(reader: &SegmentReader) -> Result<SegmentFacets, SearchError> {
        let column = reader.fast_fields().str("facet")?.ok_or_else(|| {
            SearchError::Index(tantivy::TantivyError::SchemaError(
                "the facet column is missing".into(),
            ))
        })?;
        let terms = column.num_terms();
        Ok(SegmentFacets {
            column,
            pending: Vec::with_capacity(FACET_BLOCK),
            docs: Vec::new(),
            rows: Vec::new(),
            values: Vec::new(),
            counts: vec![0; terms],
            last: vec![0; terms],
            reads: 0,
        })
    }

    /// Queues the values of `docs` (ascending, after those queued) to be counted.
    #[inline]
    fn add_all(&mut self, docs: &[DocId]) {
        self.pending.extend_from_slice(docs);
        if self.pending.len() >= FACET_BLOCK {
            self.read();
        }
    }

    /// Counts the values of the pending documents.
    fn read(&mut self) {
        self.reads += self.pending.len() as u64;
        let ords = self.column.ords();
        self.docs.clear();
        self.rows.clear();
        ords.index
            .docids_to_rowids(&self.pending, &mut self.docs, &mut self.rows);
        self.values.clear();
        self.values.resize(self.rows.len(), 0);
        ords.values.get_vals(&self.rows, &mut self.values);
        for (&doc, &ord) in self.docs.iter().zip(&self.values) {
            let Ok(ord) = usize::try_from(ord) else {
                continue;
            };
            if let (Some(n), Some(last)) = (self.counts.get_mut(ord), self.last.get_mut(ord)) {
                let mark = doc.saturating_add(1);
                if *last != mark {
                    *last = mark;
                    *n += 1;
                }
            }
        }
        self.pending.clear();
    }

    /// The counts as (facet index in [`FACETS`], value, count).
    fn harvest(&mut self) -> FacetCounts {
        self.read();
        let reader = tantivy::fastfield::FacetReader::new(self.column.clone());
        let mut facet = Facet::root();
        let mut out = Vec::new();
        for (ord, &n) in self.counts.iter().enumerate() {
            if n == 0 || reader.facet_from_ord(ord as u64, &mut facet).is_err() {
                continue;
            }
            // Every facet is `/dimension/value` (see `facet` in lib.rs).
            let path = facet.to_path();
            if let [dimension, value] = path.as_slice()
                && let Some(i) = FACETS.iter().position(|f| f == dimension)
            {
                out.push((i, value.to_string(), n));
            }
        }
        out
    }
}

/// The best `want` documents of a segment, kept in a bounded min-heap.
struct Best {
    want: usize,
    heap: std::collections::BinaryHeap<std::cmp::Reverse<(SortKey, std::cmp::Reverse<DocId>)>>,
}

impl Best {
    fn new(want: usize) -> Best {
        Best {
            want,
            heap: std::collections::BinaryHeap::with_capacity(want.min(1024) + 1),
        }
    }

    #[inline]
    fn offer(&mut self, key: SortKey, doc: DocId) {
        let item = std::cmp::Reverse((key, std::cmp::Reverse(doc)));
        if self.heap.len() < self.want {
            self.heap.push(item);
        } else if let Some(mut worst) = self.heap.peek_mut() {
            // `item < worst` in the reversed order means `item` is better.
            if item < *worst {
                *worst = item;
            }
        }
    }

    /// The first part of the worst kept key once `want` are kept: a document whose key starts
    /// lower cannot take a place.
    fn floor(&self) -> Option<i64> {
        if self.heap.len() < self.want {
            return None;
        }
        self.heap.peek().map(|std::cmp::Reverse((key, _))| key.0)
    }

    fn into_vec(self) -> Vec<(SortKey, DocId)> {
        self.heap
            .into_iter()
            .map(|std::cmp::Reverse((key, std::cmp::Reverse(doc)))| (key, doc))
            .collect()
    }
}

type Counted = Option<(u64, FacetCounts)>;

/// What a visit of one segment gave: its best documents, its count and facets (unless the
/// cache held them), and the number of documents whose facet values it read.
struct Visited {
    page: Vec<(SortKey, DocId)>,
    counted: Counted,
    reads: u64,
}

/// Documents a visit handles at once: their creation times are read with one call, their facet
/// values are queued together.
const VISIT_BLOCK: usize = 64;

/// What a visit keeps while the matching documents of a segment come, a block at a time: the
/// live ones are counted, their facets read and the best of them kept. Reading the creation
/// times of a block with one call rather than one document at a time (each through three
/// virtual calls) was an eighth of a query's first visit.
struct Visitor<'a> {
    order: Order,
    created: Option<tantivy::columnar::Column<u64>>,
    /// The source documents' dates, read for the document orders only.
    dated: Option<tantivy::columnar::Column<u64>>,
    alive: Option<&'a tantivy::fastfield::AliveBitSet>,
    facets: Option<SegmentFacets>,
    /// The live matching documents, one bit each, when they are counted by facet afterwards
    /// ([`Counting::From`]).
    matched: Option<Vec<u64>>,
    best: Best,
    count: u64,
    /// Live documents (and their scores, when ranked) not yet handled.
    docs: Vec<DocId>,
    scores: Vec<Score>,
    /// The scores of `docs` as the page orders them (see [`Order::Relevance`]).
    ranks: Vec<i64>,
    times: Vec<Option<u64>>,
    dates: Vec<Option<u64>>,
}

impl Visitor<'_> {
    /// Takes a block of matching documents (with their scores when ranked).
    fn block(&mut self, docs: &[DocId], scores: Option<&[Score]>) {
        for (i, &doc) in docs.iter().enumerate() {
            if self.alive.is_some_and(|a| !a.is_alive(doc)) {
                continue;
            }
            self.docs.push(doc);
            if let Some(s) = scores {
                self.scores.push(s.get(i).copied().unwrap_or_default());
            }
        }
        if self.docs.len() >= VISIT_BLOCK {
            self.flush();
        }
    }

    /// Handles the documents taken and not yet handled.
    fn flush(&mut self) {
        let n = self.docs.len();
        if n == 0 {
            return;
        }
        self.count += n as u64;
        if let Some(f) = self.facets.as_mut() {
            f.add_all(&self.docs);
        }
        if let Some(m) = self.matched.as_mut() {
            for &doc in &self.docs {
                if let Some(word) = m.get_mut(doc as usize / 64) {
                    *word |= 1 << (doc % 64);
                }
            }
        }
        if self.order == Order::Relevance {
            // Only a document scoring at least the page's worst can take a place: the others'
            // creation times (the tie-break) are not read. Most of a broad query's matches end
            // here once the page is full.
            self.ranks.clear();
            self.ranks.extend(
                self.scores
                    .iter()
                    .map(|s| (f64::from(*s) * 10_000.0).round() as i64),
            );
            if let Some(floor) = self.best.floor() {
                let mut kept = 0;
                // A ranked visit takes a score with every document: as many ranks as documents.
                for i in 0..n.min(self.ranks.len()) {
                    if self.ranks[i] >= floor {
                        self.docs[kept] = self.docs[i];
                        self.ranks[kept] = self.ranks[i];
                        kept += 1;
                    }
                }
                self.docs.truncate(kept);
                self.ranks.truncate(kept);
            }
        }
        let n = self.docs.len();
        self.times.clear();
        self.times.resize(n, None);
        if let Some(c) = &self.created {
            c.first_vals(&self.docs, &mut self.times);
        }
        self.dates.clear();
        self.dates.resize(n, None);
        if let Some(d) = &self.dated {
            d.first_vals(&self.docs, &mut self.dates);
        }
        for (i, (&doc, c)) in self.docs.iter().zip(&self.times).enumerate() {
            let c = c.unwrap_or(0);
            // A date is milliseconds since 1970, far below i64::MAX; a record without one
            // comes after every record that has one, in either document order.
            let date = self.dates.get(i).copied().flatten();
            let key = match self.order {
                Order::Relevance => (self.ranks.get(i).copied().unwrap_or_default(), c),
                Order::Newest => (0, c),
                Order::Oldest => (0, u64::MAX - c),
                Order::DocumentNewest => (date.map_or(i64::MIN, |d| d as i64), c),
                Order::DocumentOldest => (date.map_or(i64::MIN, |d| -(d as i64)), c),
            };
            self.best.offer(key, doc);
        }
        self.docs.clear();
        self.scores.clear();
    }
}

/// How a visit counts a segment's matches by facet.
enum Counting {
    /// Not at all: the cache holds the count.
    No,
    /// Reading the values of each matching document as it comes.
    Direct(Box<SegmentFacets>),
    /// From what every live document of the segment gave: the matches are marked as they
    /// come, then the values of the smaller side are read, the matches' own or those of the
    /// live documents the query leaves out (subtracted from every document's counts). A query
    /// matching most of a segment, as a common word does, then reads few values or none:
    /// reading them was most of the first run of such a query over a million records.
    From(Arc<Stats>),
}

/// Visits a segment's matching live documents: its best `want` in `order`, and, unless
/// `counting` is [`Counting::No`], the count and facet counts.
fn visit(
    weight: &dyn Weight,
    reader: &SegmentReader,
    order: Order,
    want: usize,
    counting: Counting,
) -> Result<Visited, SearchError> {
    let (facets, every) = match counting {
        Counting::No => (None, None),
        Counting::Direct(f) => (Some(*f), None),
        Counting::From(every) => (None, Some(every)),
    };
    let mut v = Visitor {
        order,
        created: reader.fast_fields().u64("created").ok(),
        dated: order
            .by_document()
            .then(|| reader.fast_fields().u64("date").ok())
            .flatten(),
        alive: reader.alive_bitset(),
        facets,
        matched: every
            .as_ref()
            .map(|_| vec![0; (reader.max_doc() as usize).div_ceil(64)]),
        best: Best::new(want),
        count: 0,
        docs: Vec::with_capacity(2 * VISIT_BLOCK),
        scores: Vec::new(),
        ranks: Vec::new(),
        times: Vec::with_capacity(2 * VISIT_BLOCK),
        dates: Vec::new(),
    };
    if order == Order::Relevance {
        v.scores.reserve(2 * VISIT_BLOCK);
        weight.for_each(reader, &mut |doc, score| v.block(&[doc], Some(&[score])))?;
    } else {
        weight.for_each_no_score(reader, &mut |docs| v.block(docs, None))?;
    }
    v.flush();
    let mut reads = 0;
    let counted = match (v.facets.take(), v.matched.take(), every) {
        (Some(mut f), _, _) => {
            let facets = f.harvest();
            reads = f.reads;
            Some((v.count, facets))
        }
        (None, Some(matched), Some(every)) => {
            let (facets, r) = facets_of_marked(reader, &matched, v.count, &every)?;
            reads = r;
            Some((v.count, facets))
        }
        _ => None,
    };
    Ok(Visited {
        page: v.best.into_vec(),
        counted,
        reads,
    })
}

/// The facet counts of the live documents marked in `matched` (`count` of them), given what
/// every live document of the segment gave ([`Counting::From`]): the marked documents' own
/// values when they are at most half the live ones, else every document's counts less those of
/// the live documents not marked. Also gives the number of documents whose values it read.
fn facets_of_marked(
    reader: &SegmentReader,
    matched: &[u64],
    count: u64,
    every: &Stats,
) -> Result<(FacetCounts, u64), SearchError> {
    let live = u64::from(reader.num_docs());
    // `every` is what the query of every document gave this segment with as many documents
    // deleted (its cache key says so), so it counted `live` documents.
    let complement = every.count == live && count.saturating_mul(2) > live;
    let max_doc = reader.max_doc();
    let alive = reader.alive_bitset();
    let mut facets = SegmentFacets::new(reader)?;
    let mut block: Vec<DocId> = Vec::with_capacity(FACET_BLOCK);
    for (w, &word) in matched.iter().enumerate() {
        let mut bits = if complement { !word } else { word };
        while bits != 0 {
            let doc = (w as u32) * 64 + bits.trailing_zeros();
            bits &= bits - 1;
            if doc >= max_doc {
                break;
            }
            if complement && alive.is_some_and(|a| !a.is_alive(doc)) {
                continue;
            }
            block.push(doc);
            if block.len() == FACET_BLOCK {
                facets.add_all(&block);
                block.clear();
            }
        }
    }
    facets.add_all(&block);
    let counted = facets.harvest();
    if !complement {
        return Ok((counted, facets.reads));
    }
    let left_out: HashMap<(usize, &str), u64> = counted
        .iter()
        .map(|(i, v, n)| ((*i, v.as_str()), *n))
        .collect();
    let facets_of_matched = every
        .facets
        .iter()
        .filter_map(|(i, v, n)| {
            let n = n.saturating_sub(left_out.get(&(*i, v.as_str())).copied().unwrap_or(0));
            (n > 0).then(|| (*i, v.clone(), n))
        })
        .collect();
    Ok((facets_of_matched, facets.reads))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: u32, query: &str) -> Key {
        Key {
            segment: SegmentId::generate_random(),
            deleted: n,
            query: query_key(query),
            page: None,
        }
    }

    /// A ranked visit keeps the best `want` by rounded score, then the newest, then the earlier
    /// document, though it reads no creation time for documents scoring below the page's
    /// worst: the same as sorting every match. Scores and times are drawn from few values, so
    /// that most tie.
    #[test]
    fn a_ranked_visit_keeps_what_sorting_every_match_keeps() {
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let mut b = tantivy::schema::Schema::builder();
        let created = b.add_u64_field("created", tantivy::schema::FAST);
        let index = tantivy::Index::create_in_ram(b.build());
        let mut w: tantivy::IndexWriter = index.writer_with_num_threads(1, 15_000_000).unwrap();
        let times: Vec<u64> = (0..2_000).map(|_| next() % 5).collect();
        for t in &times {
            let mut doc = tantivy::TantivyDocument::new();
            doc.add_u64(created, *t);
            w.add_document(doc).unwrap();
        }
        w.commit().unwrap();
        let searcher = index.reader().unwrap().searcher();
        let reader = &searcher.segment_readers()[0];
        for want in [1, 7, 64, 500] {
            let mut docs: Vec<(DocId, Score)> = Vec::new();
            for d in 0..2_000u32 {
                let r = next();
                if r % 3 != 0 {
                    docs.push((d, ((r >> 8) % 40) as Score * 0.25 + 0.000_01));
                }
            }
            let mut v = Visitor {
                order: Order::Relevance,
                created: reader.fast_fields().u64("created").ok(),
                dated: None,
                alive: None,
                facets: None,
                matched: None,
                best: Best::new(want),
                count: 0,
                docs: Vec::new(),
                scores: Vec::new(),
                ranks: Vec::new(),
                times: Vec::new(),
                dates: Vec::new(),
            };
            for (d, s) in &docs {
                v.block(&[*d], Some(&[*s]));
            }
            v.flush();
            assert_eq!(v.count, docs.len() as u64);
            let order =
                |a: &(SortKey, DocId), b: &(SortKey, DocId)| b.0.cmp(&a.0).then(a.1.cmp(&b.1));
            let mut got = v.best.into_vec();
            got.sort_by(order);
            let mut all: Vec<(SortKey, DocId)> = docs
                .iter()
                .map(|(d, s)| {
                    let rank = (f64::from(*s) * 10_000.0).round() as i64;
                    ((rank, times[*d as usize]), *d)
                })
                .collect();
            all.sort_by(order);
            all.truncate(want);
            assert_eq!(got, all, "want {want}");
        }
    }

    /// The block reader counts what tantivy's facet collector counts: several values of one
    /// dimension, a value held twice (once), values with a slash, dimensions not asked for,
    /// several segments, any subset of the documents.
    #[test]
    fn facet_counts_agree_with_tantivys_collector() {
        use tantivy::collector::{Collector, FacetCollector, SegmentCollector};
        let mut b = tantivy::schema::Schema::builder();
        let field = b.add_facet_field("facet", tantivy::schema::FacetOptions::default());
        let index = tantivy::Index::create_in_ram(b.build());
        let mut w: tantivy::IndexWriter = index.writer_with_num_threads(1, 15_000_000).unwrap();
        for n in 0..1000u32 {
            let mut doc = tantivy::TantivyDocument::new();
            let mut add = |dim: &str, v: &str| doc.add_facet(field, Facet::from_path([dim, v]));
            add("member", ["KZ", "BY", "AM"][n as usize % 3]);
            add("direction", &(n % 11).to_string());
            if n % 4 == 0 {
                add("direction", &((n + 5) % 11).to_string());
            }
            if n % 7 == 0 {
                add("lang", "ru");
            }
            add("lang", if n % 2 == 0 { "ru" } else { "en" });
            add("publisher", "Ministry / of \"digital\" development");
            if n % 50 == 0 {
                add("elsewhere", "x");
            }
            w.add_document(doc).unwrap();
            if n % 300 == 299 {
                w.commit().unwrap();
            }
        }
        w.commit().unwrap();
        let searcher = index.reader().unwrap().searcher();
        assert!(searcher.segment_readers().len() > 1);
        for (ord, reader) in searcher.segment_readers().iter().enumerate() {
            for keep in [|d: DocId| d % 3 != 1, |_: DocId| true, |d: DocId| d == 7] {
                let mut ours = SegmentFacets::new(reader).unwrap();
                let mut collector = FacetCollector::for_field("facet");
                for name in FACETS {
                    collector.add_facet(Facet::from_path([name]));
                }
                let mut theirs = collector.for_segment(ord as u32, reader).unwrap();
                for d in (0..reader.max_doc()).filter(|d| keep(*d)) {
                    ours.add_all(&[d]);
                    theirs.collect(d, 0.0);
                }
                let counts = theirs.harvest();
                let mut expected = Vec::new();
                for (i, name) in FACETS.iter().enumerate() {
                    for (f, n) in counts.get(Facet::from_path([*name])) {
                        expected.push((i, f.to_path().last().unwrap().to_string(), n));
                    }
                }
                let mut got = ours.harvest();
                got.sort();
                expected.sort();
                assert!(!got.is_empty());
                assert_eq!(got, expected);
            }
        }
    }

    /// A query of thousands of clauses (a hostile or merely long one, 600 KB described) costs
    /// a cache entry what any other does: sixteen of its segments no longer push out what an
    /// analyst's query left.
    #[test]
    fn a_long_query_costs_the_cache_what_a_short_one_does() {
        let cache = PageCache::new(8 << 20);
        let stats = || {
            Value::Stats(Arc::new(Stats {
                count: 1,
                facets: vec![(0, "KZ".into(), 1)],
            }))
        };
        let analyst = key(0, "an analyst's query");
        cache.put(analyst.clone(), stats());
        for n in 0..16u32 {
            let long = format!("{n} {}", "TermQuery(clause) ".repeat(600 * 1024 / 18));
            cache.put(key(0, &long), stats());
        }
        assert!(
            cache.get(&analyst).is_some(),
            "the analyst's entry was pushed out"
        );
        assert_eq!(cache.len(), 17);
    }

    #[test]
    fn what_segments_no_longer_read_gave_is_forgotten_and_its_bytes_with_it() {
        let cache = PageCache::new(1 << 20);
        let stats = || {
            Value::Stats(Arc::new(Stats {
                count: 1,
                facets: vec![(0, "KZ".into(), 1)],
            }))
        };
        let live = key(0, "q");
        // The same segment with fewer deleted documents: an older version of it.
        let older = Key {
            deleted: 3,
            ..key(2, "q")
        };
        let newer = Key {
            deleted: 4,
            ..older.clone()
        };
        let merged_away = key(0, "q");
        for k in [&live, &older, &newer, &merged_away] {
            cache.put(k.clone(), stats());
        }
        cache.keep_only(&[(live.segment, 0), (newer.segment, 4)]);
        assert!(cache.get(&live).is_some());
        assert!(cache.get(&newer).is_some());
        assert!(cache.get(&older).is_none());
        assert!(cache.get(&merged_away).is_none());
        assert_eq!(cache.len(), 2);
        let inner = cache.inner.lock().unwrap_or_else(PoisonError::into_inner);
        let counted: usize = inner
            .entries
            .iter()
            .map(|(_, (v, _))| v.bytes() + std::mem::size_of::<QueryKey>())
            .sum();
        assert_eq!(inner.bytes, counted);
    }

    #[test]
    fn the_cache_stays_within_its_bound_and_keeps_what_was_used_last() {
        let cache = PageCache::new(64 * 1024);
        let stats = || {
            Value::Stats(Arc::new(Stats {
                count: 1,
                facets: (0..20).map(|i| (0, format!("value {i}"), 1)).collect(),
            }))
        };
        let kept = key(0, "kept");
        cache.put(kept.clone(), stats());
        for i in 0..1000 {
            cache.put(key(i, "q"), stats());
            // The first entry is asked for all along: it is never the least recently used.
            assert!(cache.get(&kept).is_some(), "evicted after {i}");
            let inner = cache.inner.lock().unwrap_or_else(PoisonError::into_inner);
            assert!(inner.bytes <= 64 * 1024, "{} bytes", inner.bytes);
        }
        assert!(cache.len() < 1000);
        // An entry larger than a quarter of the bound is not kept.
        let huge = Value::Page(Arc::new(vec![((0, 0), 0); 4096]));
        let k = key(5000, "huge");
        cache.put(k.clone(), huge);
        assert!(cache.get(&k).is_none());
    }

    #[test]
    fn statistics_are_exact_for_small_indexes_and_rounded_to_two_percent_for_large_ones() {
        let index = tantivy::Index::create_in_ram(tantivy::schema::Schema::builder().build());
        let searcher = index.reader().unwrap().searcher();
        let small = Statistics::new(&searcher);
        // An empty index: below the threshold, values pass through.
        assert_eq!(small.scaled(17), 17);
        assert_eq!(small.docs, 0);
        let large = Statistics {
            searcher: &searcher,
            docs: 1 << 20,
            given: Mutex::default(),
        };
        for share in [1.0, 0.5, 0.123, 0.001, 3.7e-6, 412.5] {
            let rounded = on_grid(share);
            assert!(
                (rounded / share - 1.0).abs() <= 0.0100_1,
                "{share} → {rounded}"
            );
        }
        assert_eq!(on_grid(1.0), 1.0);
        assert_eq!(rounded_docs(1023), 1023);
        assert_eq!(rounded_docs(1_019_820), 917_504);
        assert_eq!(rounded_docs(1_100_000), 1_048_576);
        assert_eq!(
            large.fingerprint(),
            Statistics::new(&searcher).fingerprint()
        );
        large.give(1, 5);
        assert_ne!(
            large.fingerprint(),
            Statistics::new(&searcher).fingerprint()
        );
    }
}
