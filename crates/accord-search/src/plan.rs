//! How query text becomes a tantivy query: every word is looked for in each language's
//! analysis (folded, stemmed), the exact spelling weighing more; glossary terms and direction
//! names carry the query into other languages; when exact and stemmed matches are few, similar
//! spellings and word beginnings are added from the index's own term dictionaries.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::OnceLock;

use levenshtein_automata::{Distance, LevenshteinAutomatonBuilder};
use tantivy::query::{
    BooleanQuery, BoostQuery, ConstScoreQuery, EmptyQuery, Occur, Query, TermQuery,
};
use tantivy::schema::{Field, IndexRecordOption};
use tantivy::tokenizer::TextAnalyzer;
use tantivy::{Index, Term};

use crate::analysis::{fold_word, is_stop_word, words};
use crate::{Completion, Family, Fields, Glossary, TOKENIZERS};

/// The least letters of a last word read also as a beginning while it is typed: "AI" is not
/// the beginning of "aims", nor "ИИ" of "информация".
pub(crate) const MIN_BEGINNING_CHARS: usize = 3;
/// The least letters of an unknown word read as mistyped and corrected to the closest word of
/// the index (within one edit up to 8 letters, two from 9): "dtaa" is *data*, "сетт" *сеть*. A
/// word of three letters is within one edit of too many others, and codes that short ("ИКТ",
/// "API") are typed as they are. Similar spellings of a word's stem are searched from one
/// letter more (a four-letter word's stem has three).
pub(crate) const MIN_TYPO_CHARS: usize = 4;
/// Fewer exact and stemmed matches than this make a search approximate (typos, prefixes).
pub(crate) const FEW: usize = 3;
/// The constant added to every exact or stemmed match in an approximate search, far above any
/// BM25 score, so that those matches always rank first.
pub(crate) const EXACT_FIRST: f32 = 1000.0;
/// Weight of a match in the title or summary relative to the body.
const HEAD_BOOST: f32 = 2.0;
/// Extra weight of the exact spelling (the letters as typed, before folding).
const EXACT_BONUS: f32 = 0.5;
/// Weight of a word beginning (search as you type) or of a similar spelling.
const PREFIX_WEIGHT: f32 = 0.5;
const FUZZY_WEIGHT: f32 = 0.3;
/// Weight of a same-language synonym and of another language's term from the glossary.
const SYNONYM_WEIGHT: f32 = 0.8;
const TRANSLATION_WEIGHT: f32 = 0.6;
/// The score of a record found only through a direction whose name the query matched.
const DIRECTION_SCORE: f32 = 0.3;
/// The score of a record found only through a member whose name a query word is.
const MEMBER_SCORE: f32 = 0.3;
/// Words of states' formal names that name no state by themselves, in the federation's
/// languages (folded); a name word that [`names_member`] reads as one of them, or one of them
/// as it, is left out too ("Republica", "Республикасы"). The Belarusian «Рэспубліка» is listed:
/// it parts from «республика» at its second letter.
const STATE_WORDS: [&str; 17] = [
    "республика",
    "рэспублика",
    "федерация",
    "государство",
    "королевство",
    "объединенные",
    "republic",
    "republica",
    "respublika",
    "federation",
    "state",
    "kingdom",
    "united",
    "jumhuriyat",
    "джумхурият",
    "чумхурии",
    "հանրապետություն",
];

/// Whether a query word (folded) names the member whose name holds `name` (folded): one word
/// in another case or form ("Беларуси", "Белоруссии", "Казахстана", "Belarusian"). They agree
/// on all but the name's last two letters, and on at least five.
pub(crate) fn names_member(word: &str, name: &str) -> bool {
    let common = word
        .chars()
        .zip(name.chars())
        .take_while(|(a, b)| a == b)
        .count();
    common >= 5 && common + 2 >= name.chars().count()
}
/// Most terms one word expands to, and most dictionary entries looked at per segment.
const MAX_EXPANSIONS: usize = 24;
/// Most completions of the last word searched in an exact (not approximate) reading.
const MAX_TYPING_EXPANSIONS: usize = 8;
/// Most forms of a word's base ([`crate::analysis::inflection_base`]) searched in the fields
/// of the languages Accord does not stem, the most frequent first. [`expand`] gives no more
/// than [`MAX_EXPANSIONS`]; this bounds the forms whatever that becomes, so that a word whose
/// base begins many others (a Russian word, which is looked for in those fields too, cut to
/// «компью» from «компьютеры», or to «казахс» from «Казахстан») adds a bounded number of
/// terms.
const MAX_INFLECTIONS: usize = 24;
const MAX_SCAN: usize = 4096;
/// A word matching more direction names than this is not specific enough to stand for one.
const MAX_DIRECTIONS: usize = 2;

/// The analysed tokens of `text` in `family`, by word position (the folded form first, then
/// the exact form when it differs); a word too long to index has none.
pub(crate) fn analyze(index: &Index, family: Family, text: &str) -> Vec<Vec<String>> {
    match index.tokenizers().get(TOKENIZERS[family as usize]) {
        Some(mut analyzer) => analyze_with(&mut analyzer, text),
        None => vec![Vec::new(); words(text).len()],
    }
}

/// [`analyze`] with a given analyser.
pub(crate) fn analyze_with(analyzer: &mut TextAnalyzer, text: &str) -> Vec<Vec<String>> {
    let n = words(text).len();
    let mut out = vec![Vec::new(); n];
    let mut stream = analyzer.token_stream(text);
    while stream.advance() {
        let t = stream.token();
        if let Some(v) = out.get_mut(t.position)
            && !v.contains(&t.text)
        {
            v.push(t.text.clone());
        }
    }
    out
}

/// Whether `word` (lower case) is Cyrillic in letters of the Russian alphabet only; digits
/// are allowed, a Latin letter or another Cyrillic alphabet's (і, ў, ә, қ, ө …) is not.
fn is_russian(word: &str) -> bool {
    word.chars().any(|c| ('а'..='я').contains(&c))
        && word
            .chars()
            .all(|c| ('а'..='я').contains(&c) || c == 'ё' || c.is_ascii_digit())
}

/// The language a query is written in, judged by its script: Cyrillic → `ru`, Latin → `en`.
pub fn query_lang(text: &str) -> Option<&'static str> {
    let (mut cyr, mut lat) = (0usize, 0usize);
    for c in text.chars() {
        if ('\u{0400}'..='\u{04FF}').contains(&c) {
            cyr += 1;
        } else if c.is_ascii_alphabetic() {
            lat += 1;
        }
    }
    match (cyr, lat) {
        (0, 0) => None,
        (c, l) if c >= l => Some("ru"),
        _ => Some("en"),
    }
}

struct Term1 {
    entry: usize,
    family: Family,
    key: Vec<String>,
    /// Per word: the folded token, or `None` for a stop word (optional in a match).
    tokens: Vec<Option<String>>,
    text: String,
}

struct DirectionName {
    family: Family,
    tokens: BTreeSet<String>,
    folded: String,
    name: String,
}

/// The glossary analysed with the index's analysers, ready to match queries.
pub(crate) struct PreparedGlossary {
    terms: Vec<Term1>,
    directions: Vec<(String, Vec<DirectionName>)>,
    /// Each word of a member's names (folded) that no other member's names hold and that is
    /// not a word of any state's name ("republic", "федерация"), with that member's code:
    /// "беларусь" → BY, "kazakhstan" → KZ.
    member_words: Vec<(String, String)>,
    /// Every word of the glossary's terms, folded: a vocabulary for corrections besides the
    /// index's own (a typo in an English word whose records are all Russian).
    words: Vec<String>,
}

impl PreparedGlossary {
    pub(crate) fn new(index: &Index, _f: &Fields, g: &Glossary) -> PreparedGlossary {
        let mut terms = Vec::new();
        for (entry, e) in g.entries.iter().enumerate() {
            for (lang, list) in &e.terms {
                let family = Family::of(lang);
                for t in list {
                    let analysed = analyze(index, family, t);
                    let surfaces = words(t);
                    let tokens: Vec<Option<String>> = analysed
                        .iter()
                        .zip(&surfaces)
                        .map(|(tok, (_, _, w))| {
                            tok.first()
                                .filter(|_| !is_stop_word(&fold_word(w)))
                                .cloned()
                        })
                        .collect();
                    let key: Vec<String> =
                        analysed.iter().filter_map(|v| v.first().cloned()).collect();
                    if key.is_empty() {
                        continue;
                    }
                    terms.push(Term1 {
                        entry,
                        family,
                        key,
                        tokens,
                        text: t.clone(),
                    });
                }
            }
        }
        let directions = g
            .directions
            .iter()
            .map(|d| {
                let names = d
                    .names
                    .iter()
                    .map(|(lang, name)| {
                        let family = Family::of(lang);
                        let tokens = analyze(index, family, name)
                            .into_iter()
                            .filter_map(|v| v.into_iter().next())
                            .collect();
                        DirectionName {
                            family,
                            tokens,
                            folded: fold_word(&name.to_lowercase()),
                            name: name.clone(),
                        }
                    })
                    .collect();
                (d.code.clone(), names)
            })
            .collect();
        // Words of two members' names that read as one another ("Republica" and "Republic",
        // in whatever forms) name neither.
        let alike = |a: &str, b: &str| names_member(a, b) || names_member(b, a);
        let mut member_words: BTreeMap<String, String> = BTreeMap::new();
        let mut shared: BTreeSet<String> = BTreeSet::new();
        for m in &g.members {
            for name in m.names.values() {
                for (_, _, w) in words(name) {
                    let w = fold_word(&w);
                    if is_stop_word(&w)
                        || w.chars().count() < 4
                        || STATE_WORDS.iter().any(|s| *s == w || alike(s, &w))
                    {
                        continue;
                    }
                    for (other, code) in &member_words {
                        if *code != m.code && alike(other, &w) {
                            shared.insert(other.clone());
                            shared.insert(w.clone());
                        }
                    }
                    member_words.entry(w).or_insert_with(|| m.code.clone());
                }
            }
        }
        member_words.retain(|w, _| !shared.contains(w));
        let member_words: Vec<(String, String)> = member_words.into_iter().collect();
        let mut words_of: Vec<String> = g
            .entries
            .iter()
            .flat_map(|e| e.terms.values().flatten())
            .flat_map(|t| words(t))
            .map(|(_, _, w)| fold_word(&w))
            .filter(|w| w.chars().count() >= 4)
            .collect();
        words_of.sort();
        words_of.dedup();
        PreparedGlossary {
            terms,
            directions,
            member_words,
            words: words_of,
        }
    }

    /// Direction names containing every word of `prefix` (the last one as a beginning).
    pub(crate) fn directions_matching(&self, prefix: &str, n: usize) -> Vec<Completion> {
        let ws: Vec<String> = words(prefix)
            .into_iter()
            .map(|(_, _, w)| fold_word(&w))
            .collect();
        if ws.is_empty() {
            return Vec::new();
        }
        let lang = query_lang(prefix);
        let mut out = Vec::new();
        for (code, names) in &self.directions {
            let name = names
                .iter()
                .filter(|d| {
                    let name_words: Vec<String> =
                        words(&d.folded).into_iter().map(|(_, _, w)| w).collect();
                    ws.iter().enumerate().all(|(i, w)| {
                        name_words.iter().any(|nw| {
                            if i + 1 == ws.len() {
                                nw.starts_with(w.as_str())
                            } else {
                                nw == w
                            }
                        })
                    })
                })
                .min_by_key(|d| lang.is_none_or(|l| Family::of(l) != d.family));
            if let Some(d) = name {
                out.push(Completion {
                    text: d.name.clone(),
                    kind: "direction".into(),
                    code: Some(code.clone()),
                    id: None,
                });
            }
            if out.len() >= n {
                break;
            }
        }
        out
    }
}

struct Word {
    surface: String,
    folded: String,
    stop: bool,
    /// Per family: the folded token, then the exact one if it differs.
    tokens: [Vec<String>; 3],
    /// Whether any of its tokens is in the index (asked only for an approximate reading).
    known: OnceLock<bool>,
}

struct Group {
    start: usize,
    end: usize,
    term: usize,
}

/// A query ready to run, with the terms to highlight.
pub(crate) struct Planned {
    pub(crate) query: Box<dyn Query>,
    pub(crate) highlight: Vec<(Family, String)>,
    pub(crate) lang: Option<&'static str>,
}

/// The reading of one query text.
pub(crate) struct Planner<'a> {
    index: &'a Index,
    f: &'a Fields,
    g: &'a PreparedGlossary,
    searcher: &'a tantivy::Searcher,
    words: Vec<Word>,
    groups: Vec<Group>,
    directions: Vec<usize>,
    /// Per word, the member it names, if any ([`PreparedGlossary::member_words`]).
    members: Vec<Option<String>>,
    /// The last word is still being typed (no space after it).
    partial_last: bool,
    lang: Option<&'static str>,
}

/// Words of a query read (see [`Planner::new`]).
pub const MAX_QUERY_WORDS: usize = 16;

impl<'a> Planner<'a> {
    /// Reads `text`; `None` when it has no words.
    pub(crate) fn new(
        index: &'a Index,
        f: &'a Fields,
        g: &'a PreparedGlossary,
        searcher: &'a tantivy::Searcher,
        text: &str,
    ) -> Option<Planner<'a>> {
        let surfaces = words(text);
        if surfaces.is_empty() {
            return None;
        }
        let per_family = Family::ALL.map(|fam| analyze(index, fam, text));
        let mut ws: Vec<Word> = surfaces
            .into_iter()
            .enumerate()
            .map(|(i, (_, _, surface))| {
                let folded = fold_word(&surface);
                let tokens = Family::ALL.map(|fam| per_family[fam as usize][i].clone());
                Word {
                    stop: is_stop_word(&folded),
                    surface,
                    folded,
                    tokens,
                    known: OnceLock::new(),
                }
            })
            .filter(|w| w.tokens.iter().any(|t| !t.is_empty()))
            .collect();
        // A word given twice is looked for once (its last place kept: the last word may be
        // one still being typed), and a query reads at most MAX_QUERY_WORDS words, the last
        // always among them: each word costs dictionary scans, expansions and corrections, so
        // a query of 85 words cost 85 times one, on a search slot shared by every analyst.
        let mut seen = std::collections::HashSet::new();
        ws.reverse();
        ws.retain(|w| seen.insert(w.folded.clone()));
        ws.reverse();
        if ws.len() > MAX_QUERY_WORDS {
            let last = ws.pop();
            ws.truncate(MAX_QUERY_WORDS - 1);
            ws.extend(last);
        }
        if ws.is_empty() {
            return None;
        }
        // A query of stop words only ("the", "и") looks for them.
        if ws.iter().all(|w| w.stop) {
            for w in &mut ws {
                w.stop = false;
            }
        }
        let mut p = Planner {
            index,
            f,
            g,
            searcher,
            partial_last: !text.ends_with(char::is_whitespace),
            lang: query_lang(text),
            groups: Vec::new(),
            directions: Vec::new(),
            members: Vec::new(),
            words: ws,
        };
        p.match_glossary();
        p.match_directions();
        p.match_members();
        Some(p)
    }

    /// Whether any token of word `i` is in the index (a [`collapsed`] stem counts only as
    /// the word written in titles, summaries or tags).
    fn known(&self, w: &Word) -> bool {
        let chars = w.folded.chars().count();
        let held = |field: Field, t: &str| {
            self.searcher
                .doc_freq(&Term::from_field_text(field, t))
                .is_ok_and(|n| n > 0)
        };
        *w.known.get_or_init(|| {
            Family::ALL.iter().any(|fam| {
                w.tokens[*fam as usize].iter().any(|t| {
                    if collapsed(t, chars) {
                        held(self.f.words, &w.folded)
                    } else {
                        [self.f.head(*fam), self.f.text(*fam)]
                            .iter()
                            .any(|field| held(*field, t))
                    }
                })
            })
        })
    }

    /// Finds glossary terms in the query, longest first from the left.
    fn match_glossary(&mut self) {
        let mut i = 0;
        while i < self.words.len() {
            if self.words[i].stop {
                i += 1;
                continue;
            }
            let best = self
                .g
                .terms
                .iter()
                .enumerate()
                .filter(|(_, t)| {
                    let n = t.key.len();
                    i + n <= self.words.len()
                        && t.key.iter().enumerate().all(|(k, tok)| {
                            self.words[i + k].tokens[t.family as usize].first() == Some(tok)
                        })
                })
                .max_by_key(|(_, t)| t.key.len());
            match best {
                Some((term, t)) => {
                    let end = i + t.key.len();
                    self.groups.push(Group {
                        start: i,
                        end,
                        term,
                    });
                    i = end;
                }
                None => i += 1,
            }
        }
    }

    /// Directions whose name (in some language) contains every content word of the query.
    fn match_directions(&mut self) {
        let content: Vec<&Word> = self.words.iter().filter(|w| !w.stop).collect();
        if content.is_empty() {
            return;
        }
        let matching: Vec<usize> = self
            .g
            .directions
            .iter()
            .enumerate()
            .filter(|(_, (_, names))| {
                names.iter().any(|n| {
                    content.iter().all(|w| {
                        w.tokens[n.family as usize]
                            .first()
                            .is_some_and(|t| n.tokens.contains(t))
                    })
                })
            })
            .map(|(i, _)| i)
            .collect();
        if matching.len() <= MAX_DIRECTIONS {
            self.directions = matching;
        }
    }

    /// The member each content word names, if it names one: the word reads as one of the
    /// words only that member's names hold ([`names_member`]).
    fn match_members(&mut self) {
        self.members = self
            .words
            .iter()
            .map(|w| {
                if w.stop {
                    return None;
                }
                self.g
                    .member_words
                    .iter()
                    .find(|(name, _)| names_member(&w.folded, name))
                    .map(|(_, code)| code.clone())
            })
            .collect();
    }

    /// The codes of the members a word of the query names.
    pub(crate) fn members(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for (i, m) in self.members.iter().enumerate() {
            if let Some(m) = m
                && !self.groups.iter().any(|g| (g.start..g.end).contains(&i))
                && !out.contains(m)
            {
                out.push(m.clone());
            }
        }
        out
    }

    /// Whether an approximate reading could find more.
    pub(crate) fn can_relax(&self) -> bool {
        self.words
            .iter()
            .any(|w| !w.stop && w.folded.chars().count() >= 4)
    }

    /// The glossary terms searched besides the query's own words.
    pub(crate) fn also(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for g in &self.groups {
            let matched = &self.g.terms[g.term];
            for t in self.g.terms.iter().filter(|t| t.entry == matched.entry) {
                if !(out.contains(&t.text) || t.family == matched.family && t.key == matched.key) {
                    out.push(t.text.clone());
                }
            }
        }
        out
    }

    /// The codes of the directions matched.
    pub(crate) fn directions(&self) -> Vec<String> {
        self.directions
            .iter()
            .map(|i| self.g.directions[*i].0.clone())
            .collect()
    }

    /// The query; `relaxed` adds similar spellings and word beginnings.
    pub(crate) fn query(&self, relaxed: bool) -> Planned {
        let mut highlight = Vec::new();
        let mut clauses: Vec<(Occur, Box<dyn Query>)> = Vec::new();
        let mut i = 0;
        while i < self.words.len() {
            if let Some(g) = self.groups.iter().find(|g| g.start == i) {
                let own: Vec<(Occur, Box<dyn Query>)> = (g.start..g.end)
                    .map(|k| (self.occur(k), self.word_query(k, relaxed, &mut highlight)))
                    .collect();
                let mut alternatives: Vec<(Occur, Box<dyn Query>)> =
                    vec![(Occur::Should, Box::new(BooleanQuery::new(own)))];
                let matched = &self.g.terms[g.term];
                for t in self.g.terms.iter().filter(|t| t.entry == matched.entry) {
                    if t.family == matched.family && t.key == matched.key {
                        continue;
                    }
                    let weight = if t.family == matched.family {
                        SYNONYM_WEIGHT
                    } else {
                        TRANSLATION_WEIGHT
                    };
                    let q = self.term_query(t, &mut highlight);
                    alternatives.push((Occur::Should, Box::new(BoostQuery::new(q, weight))));
                }
                clauses.push((Occur::Must, Box::new(BooleanQuery::new(alternatives))));
                i = g.end;
                continue;
            }
            let word = self.word_query(i, relaxed, &mut highlight);
            // A word naming a member ("Беларуси") finds its text, or that member's records.
            let word = match self.members.get(i).and_then(Option::as_ref) {
                Some(code) => {
                    let term = Term::from_facet(self.f.facet, &crate::facet("member", code));
                    Box::new(BooleanQuery::new(vec![
                        (Occur::Should, word),
                        (
                            Occur::Should,
                            Box::new(ConstScoreQuery::new(
                                Box::new(TermQuery::new(term, IndexRecordOption::Basic)),
                                MEMBER_SCORE,
                            )),
                        ),
                    ])) as Box<dyn Query>
                }
                None => word,
            };
            clauses.push((self.occur(i), word));
            i += 1;
        }
        let mut query: Box<dyn Query> = Box::new(BooleanQuery::new(clauses));
        if !self.directions.is_empty() {
            let mut alternatives: Vec<(Occur, Box<dyn Query>)> = vec![(Occur::Should, query)];
            for d in &self.directions {
                let term = Term::from_facet(
                    self.f.facet,
                    &crate::facet("direction", &self.g.directions[*d].0),
                );
                alternatives.push((
                    Occur::Should,
                    Box::new(ConstScoreQuery::new(
                        Box::new(TermQuery::new(term, IndexRecordOption::Basic)),
                        DIRECTION_SCORE,
                    )),
                ));
            }
            query = Box::new(BooleanQuery::new(alternatives));
        }
        Planned {
            query,
            highlight,
            lang: self.lang,
        }
    }

    fn occur(&self, i: usize) -> Occur {
        if self.words[i].stop {
            Occur::Should
        } else {
            Occur::Must
        }
    }

    /// One word in every family's fields, with its expansions.
    fn word_query(
        &self,
        i: usize,
        relaxed: bool,
        highlight: &mut Vec<(Family, String)>,
    ) -> Box<dyn Query> {
        let w = &self.words[i];
        let chars = w.folded.chars().count();
        let last = i + 1 == self.words.len();
        let prefix = !w.stop
            && ((last && self.partial_last && chars >= MIN_BEGINNING_CHARS)
                || (relaxed && !self.known(w) && chars >= 4));
        // Similar spellings of the word's stem: from five letters (a four-letter word's stem has
        // three, within one edit of too many others: "сеть" → "сет" would match "сел").
        let fuzzy = relaxed && !w.stop && chars > MIN_TYPO_CHARS;
        // An unknown word's closest word of the vocabulary (whole words, not stems), analysed
        // like the word: this finds typos that stemming turns into another stem ("persnoal" for
        // "personal"), and those of four-letter words ("dtaa" for "data").
        let corrected = (relaxed && !w.stop && chars >= MIN_TYPO_CHARS && !self.known(w))
            .then(|| self.closest_word(&w.folded, if chars >= 9 { 2 } else { 1 }))
            .flatten();
        let mut alternatives: Vec<(Occur, Box<dyn Query>)> = Vec::new();
        let mut as_written: Vec<(Occur, Box<dyn Query>)> = Vec::new();
        for fam in Family::ALL {
            let tokens = &w.tokens[fam as usize];
            let Some(folded) = tokens.first() else {
                continue;
            };
            let mut add = |t: &str, weight: f32, highlight: &mut Vec<(Family, String)>| {
                for (field, boost) in [(self.f.head(fam), HEAD_BOOST), (self.f.text(fam), 1.0)] {
                    alternatives.push((Occur::Should, boosted(field, t, boost * weight)));
                }
                highlight.push((fam, t.to_string()));
            };
            let fields = [self.f.head(fam), self.f.text(fam)];
            // The last word while typed, which the stemmer cut by two letters or more, which
            // no title, summary or tag holds as written, and which begins longer words of the
            // index: most likely a beginning ("правит" of *правительство*), not the word its
            // stem makes of it ("правит" → "прав": *правовой*, *правило*). Its beginnings rank
            // first, its stem after them.
            // A word the records hold as it is written ("digital", "правил") is a word,
            // however its stem relates to longer ones.
            let written = || {
                std::iter::once(w.folded.as_str())
                    .chain(tokens.get(1).map(String::as_str))
                    .any(|t| {
                        fields.iter().chain([&self.f.words]).any(|f| {
                            self.searcher
                                .doc_freq(&Term::from_field_text(*f, t))
                                .is_ok_and(|n| n > 0)
                        })
                    })
            };
            let beginning = (last && self.partial_last && !w.stop)
                .then(|| {
                    (folded.chars().count() + 2 <= chars && !written())
                        .then(|| {
                            let mut longer =
                                expand(self.searcher, &fields, Expand::Prefix(&w.folded));
                            longer.retain(|t| t.chars().count() > chars);
                            longer.truncate(MAX_TYPING_EXPANSIONS);
                            longer
                        })
                        .filter(|l| !l.is_empty())
                })
                .flatten();
            // A stem the stemmer cut below three letters from a word three letters longer
            // ("обьём" → "об", a typo read as an ending) is another word, or a preposition:
            // the word is searched as written, and corrected if mistyped.
            if beginning.is_none() && collapsed(folded, chars) {
                // Titles, summaries and tags hold the word as written, or nothing does and its
                // correction is offered.
                as_written.push((Occur::Should, boosted(self.f.words, &w.folded, HEAD_BOOST)));
                highlight.push((fam, w.folded.clone()));
            } else if beginning.is_none() {
                add(folded, 1.0, highlight);
            }
            if let Some(exact) = tokens.get(1) {
                add(exact, EXACT_BONUS, highlight);
            }
            let mut expanded: BTreeSet<String> = BTreeSet::new();
            if let Some(longer) = beginning {
                // The words it begins are what it most likely means, even when the search is
                // approximate; its stem is kept, ranked below them (a word only bodies hold
                // cannot be told from a beginning), without similar spellings or beginnings.
                for t in &longer {
                    add(t, 1.0, highlight);
                }
                // Not highlighted: a snippet shows the words it begins.
                for (field, boost) in [(self.f.head(fam), HEAD_BOOST), (self.f.text(fam), 1.0)] {
                    alternatives
                        .push((Occur::Should, boosted(field, folded, boost * FUZZY_WEIGHT)));
                }
                continue;
            }
            // A stem the stemmer cut below three letters ("обьём" → "об", "оба" → "об") is
            // no beginning or spelling to widen: it begins or is one edit from nearly every
            // short word ("об", "общества", "область"). The word's correction still applies.
            let stem_long_enough = folded.chars().count() >= MIN_BEGINNING_CHARS;
            if prefix && stem_long_enough {
                let mut found = expand(self.searcher, &fields, Expand::Prefix(folded));
                // Typing costs little: the most frequent completions only, unless the search
                // is already approximate.
                if !relaxed {
                    found.truncate(MAX_TYPING_EXPANSIONS);
                }
                expanded.extend(found);
                // A beginning typed past the stem ("digita" for the stem "digit").
                expanded.extend(shorter_stems(self.searcher, &fields, folded));
            }
            if fuzzy && stem_long_enough {
                let d = if chars >= 9 { 2 } else { 1 };
                expanded.extend(expand(self.searcher, &fields, Expand::Fuzzy(folded, d)));
            }
            if let Some(c) = &corrected {
                let analysed = analyze(self.index, fam, c);
                expanded.extend(analysed.into_iter().flatten().take(1));
            }
            // The languages Accord does not stem (Kazakh, Kyrgyz, Uzbek, Azerbaijani, Turkmen,
            // Armenian …) match other forms of the word too, in every reading, approximate or
            // not: its base, with the endings of the members' Turkic languages cut, and the
            // words it begins («қызметтер» finds «қызмет», «қызметтерді», «қызметін»). They
            // weigh as beginnings, below the word as typed, which ranks first; the word is
            // still required, through one of its forms. A Russian or English word is looked
            // for in these fields too, and may begin many of their words: MAX_INFLECTIONS
            // bounds what it adds.
            let mut inflected: BTreeSet<String> = BTreeSet::new();
            if fam == Family::Any
                && let Some(base) = crate::analysis::inflection_base(folded)
            {
                let mut forms = expand(self.searcher, &fields, Expand::Prefix(&base));
                forms.truncate(MAX_INFLECTIONS);
                inflected.extend(forms);
                // The base as a word of its own («қызмет»), which `expand` leaves out.
                if base != *folded {
                    inflected.insert(base);
                }
            }
            expanded.extend(inflected.iter().cloned());
            for t in &expanded {
                if tokens.contains(t) {
                    continue;
                }
                let begins = prefix && t.starts_with(folded.as_str());
                let weight = if begins || inflected.contains(t) {
                    PREFIX_WEIGHT
                } else {
                    FUZZY_WEIGHT
                };
                add(t, weight, highlight);
            }
        }
        alternatives.extend(as_written.into_iter().take(1));
        if alternatives.is_empty() {
            return Box::new(EmptyQuery);
        }
        Box::new(BooleanQuery::new(alternatives))
    }

    /// A glossary term: all its content words, in its language's fields.
    fn term_query(&self, t: &Term1, highlight: &mut Vec<(Family, String)>) -> Box<dyn Query> {
        let clauses: Vec<(Occur, Box<dyn Query>)> = t
            .tokens
            .iter()
            .flatten()
            .map(|tok| {
                highlight.push((t.family, tok.clone()));
                let q: Box<dyn Query> = Box::new(BooleanQuery::new(vec![
                    (
                        Occur::Should,
                        boosted(self.f.head(t.family), tok, HEAD_BOOST),
                    ),
                    (Occur::Should, boosted(self.f.text(t.family), tok, 1.0)),
                ]));
                (Occur::Must, q)
            })
            .collect();
        if clauses.is_empty() {
            return Box::new(EmptyQuery);
        }
        Box::new(BooleanQuery::new(clauses))
    }

    /// The query with each unknown word replaced by the most frequent word of the index
    /// (titles, summaries, tags) within one edit (two for words of 9+ letters); `None` when no
    /// word needed or found a correction.
    pub(crate) fn correction(&self) -> Option<String> {
        let mut changed = false;
        let mut out = Vec::new();
        for (i, w) in self.words.iter().enumerate() {
            let chars = w.folded.chars().count();
            let typing = i + 1 == self.words.len() && self.partial_last;
            let fix = if w.stop
                || self.known(w)
                || chars < MIN_TYPO_CHARS
                || (typing && self.has_prefix(w))
            {
                None
            } else {
                self.closest_word(&w.folded, if chars >= 9 { 2 } else { 1 })
            };
            match fix {
                Some(c) => {
                    changed = true;
                    out.push(c);
                }
                None => out.push(w.surface.clone()),
            }
        }
        changed.then(|| out.join(" "))
    }

    fn has_prefix(&self, w: &Word) -> bool {
        !expand(self.searcher, &[self.f.words], Expand::Prefix(&w.folded)).is_empty()
    }

    /// The most frequent word within `max` edits of `folded`, from the index's vocabulary, else
    /// the glossary's; never the word itself (a word the glossary knows but no record holds is
    /// searched through the glossary, and is no correction to offer).
    /// A Russian word's correction is a word of Russian text when one is as close: a
    /// Belarusian «праграмы» is one edit from «програмы» as the Russian «программы» is, and may
    /// be the more frequent.
    fn closest_word(&self, folded: &str, max: u8) -> Option<String> {
        // Another form of the same word ("цифровизация" for "цифровизации": one stem in Russian
        // or English) is the word itself, typed right, and no correction.
        let stems = |w: &str| {
            [Family::Ru, Family::En].map(|fam| {
                analyze(self.index, fam, w)
                    .first()
                    .and_then(|t| t.first().cloned())
            })
        };
        let own = stems(folded);
        // Nor is another form of a word of the languages Accord does not stem, one with the
        // same base («xidmətləri» for «xidmətlər»): the search looks for it already (§3). A
        // word of Russian or English text is a correction still, whatever its base: «телемедицна»
        // and «телемедицина» both cut to «телемедиц», and only the second is Russian.
        let own_base = crate::analysis::inflection_base(folded);
        let in_stemmed_text = |w: &String| {
            [Family::Ru, Family::En].iter().any(|fam| {
                analyze(self.index, *fam, w)
                    .first()
                    .and_then(|t| t.first())
                    .is_some_and(|stem| {
                        [self.f.head(*fam), self.f.text(*fam)].iter().any(|field| {
                            self.searcher
                                .doc_freq(&Term::from_field_text(*field, stem))
                                .is_ok_and(|n| n > 0)
                        })
                    })
            })
        };
        let other = |w: &String| {
            fold_word(w) != folded
                && stems(w)
                    .iter()
                    .zip(&own)
                    .all(|(a, b)| a.is_none() || a != b)
                && (own_base.is_none()
                    || crate::analysis::inflection_base(&fold_word(w)) != own_base
                    || in_stemmed_text(w))
        };
        let russian = is_russian(folded);
        let in_russian_text = |w: &String| {
            analyze(self.index, Family::Ru, w)
                .first()
                .and_then(|t| t.first())
                .is_some_and(|stem| {
                    [self.f.head(Family::Ru), self.f.text(Family::Ru)]
                        .iter()
                        .any(|field| {
                            self.searcher
                                .doc_freq(&Term::from_field_text(*field, stem))
                                .is_ok_and(|n| n > 0)
                        })
                })
        };
        (1..=max).find_map(|d| {
            let found = expand(self.searcher, &[self.f.words], Expand::Fuzzy(folded, d));
            let found = prefer_exact_letters(found);
            let russian_first = russian
                .then(|| {
                    found
                        .iter()
                        .find(|w| other(w) && in_russian_text(w))
                        .cloned()
                })
                .flatten();
            russian_first
                .or_else(|| found.into_iter().find(other))
                .or_else(|| {
                    let dfa = automaton_builder(d).build_dfa(folded);
                    self.g
                        .words
                        .iter()
                        .find(|w| matches!(dfa.eval(w.as_str()), Distance::Exact(_)) && other(w))
                        .cloned()
                })
        })
    }
}

/// Terms ordered as found (most frequent first), each folded form replaced by its exact-letter
/// variant when the dictionary holds one ("оскемен" → "өскемен").
fn prefer_exact_letters(found: Vec<String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for t in &found {
        let fold = fold_word(t);
        if out.iter().any(|o| fold_word(o) == fold) {
            continue;
        }
        let exact = found
            .iter()
            .find(|x| *x != &fold && fold_word(x) == fold)
            .unwrap_or(t);
        out.push(exact.clone());
    }
    out
}

fn boosted(field: Field, text: &str, boost: f32) -> Box<dyn Query> {
    let q = Box::new(TermQuery::new(
        Term::from_field_text(field, text),
        IndexRecordOption::WithFreqs,
    ));
    if (boost - 1.0).abs() < f32::EPSILON {
        q
    } else {
        Box::new(BoostQuery::new(q, boost))
    }
}

/// How a word is expanded over a term dictionary.
enum Expand<'s> {
    /// Terms starting with this.
    Prefix(&'s str),
    /// Terms within this many edits (a transposition counts as one).
    Fuzzy(&'s str, u8),
}

fn automaton_builder(distance: u8) -> &'static LevenshteinAutomatonBuilder {
    static ONE: OnceLock<LevenshteinAutomatonBuilder> = OnceLock::new();
    static TWO: OnceLock<LevenshteinAutomatonBuilder> = OnceLock::new();
    if distance <= 1 {
        ONE.get_or_init(|| LevenshteinAutomatonBuilder::new(1, true))
    } else {
        TWO.get_or_init(|| LevenshteinAutomatonBuilder::new(2, true))
    }
}

/// A Levenshtein automaton walked over a term dictionary.
struct Within(levenshtein_automata::DFA);

impl tantivy_fst::Automaton for Within {
    type State = u32;

    fn start(&self) -> u32 {
        self.0.initial_state()
    }

    fn is_match(&self, state: &u32) -> bool {
        matches!(self.0.distance(*state), Distance::Exact(_))
    }

    fn can_match(&self, state: &u32) -> bool {
        *state != levenshtein_automata::SINK_STATE
    }

    fn accept(&self, state: &u32, byte: u8) -> u32 {
        self.0.transition(*state, byte)
    }
}

/// The terms of `fields` an expansion reaches, most frequent first, at most
/// [`MAX_EXPANSIONS`], the word itself excluded.
fn expand(searcher: &tantivy::Searcher, fields: &[Field], how: Expand<'_>) -> Vec<String> {
    let mut found: HashMap<String, u64> = HashMap::new();
    let mut note = |key: &[u8], df: u32| {
        if let Ok(k) = std::str::from_utf8(key) {
            *found.entry(k.to_string()).or_default() += u64::from(df);
        }
    };
    for segment in searcher.segment_readers() {
        for field in fields {
            let Ok(inverted) = segment.inverted_index(*field) else {
                continue;
            };
            let terms = inverted.terms();
            match how {
                Expand::Prefix(p) => {
                    let mut upper = p.as_bytes().to_vec();
                    upper.push(0xFF);
                    if let Ok(mut s) = terms.range().ge(p.as_bytes()).lt(&upper).into_stream() {
                        let mut n = 0;
                        while n < MAX_SCAN && s.advance() {
                            n += 1;
                            note(s.key(), s.value().doc_freq);
                        }
                    }
                }
                Expand::Fuzzy(word, d) => {
                    let dfa = automaton_builder(d).build_dfa(word);
                    if let Ok(mut s) = terms.search(Within(dfa)).into_stream() {
                        let mut n = 0;
                        while n < MAX_SCAN && s.advance() {
                            n += 1;
                            note(s.key(), s.value().doc_freq);
                        }
                    }
                }
            }
        }
    }
    let word = match how {
        Expand::Prefix(p) => p,
        Expand::Fuzzy(w, _) => w,
    };
    found.remove(word);
    let mut list: Vec<(String, u64)> = found.into_iter().collect();
    list.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    list.into_iter()
        .take(MAX_EXPANSIONS)
        .map(|(t, _)| t)
        .collect()
}

/// Whether `stem` is what the stemmer left of a word of `word_chars` letters cut to a function
/// word, three letters or more shorter: a typo read as an ending ("обьём" → "об"), which
/// matches the preposition rather than the word typed. A real word's short stem ("going" →
/// "go", "ушами" → "уш") is its stem, searched as such. Only Russian and English function
/// words: the stemmers are theirs, and the Russian stem of «боями» is «бо», a real stem that
/// is also the Tajik «бо» ("with").
fn collapsed(stem: &str, word_chars: usize) -> bool {
    let stem_chars = stem.chars().count();
    stem_chars < MIN_BEGINNING_CHARS
        && word_chars >= stem_chars + 3
        && crate::analysis::is_russian_or_english_stop_word(stem)
}

/// Terms that are `word` less its last one or two letters (at least three remain): the stem a
/// beginning typed past it belongs to.
fn shorter_stems(searcher: &tantivy::Searcher, fields: &[Field], word: &str) -> Vec<String> {
    let chars: Vec<char> = word.chars().collect();
    let mut out = Vec::new();
    for cut in 1..=2 {
        if chars.len() < cut + 3 {
            break;
        }
        let shorter: String = chars[..chars.len() - cut].iter().collect();
        let present = fields.iter().any(|f| {
            searcher
                .doc_freq(&Term::from_field_text(*f, &shorter))
                .is_ok_and(|n| n > 0)
        });
        if present {
            out.push(shorter);
        }
    }
    out
}

/// Completions of the last word of `text` from the vocabulary of titles, summaries and tags.
pub(crate) fn complete_words(
    searcher: &tantivy::Searcher,
    f: &Fields,
    text: &str,
    n: usize,
) -> Vec<Completion> {
    if text.ends_with(char::is_whitespace) {
        return Vec::new();
    }
    let Some((from, _, last)) = words(text).pop() else {
        return Vec::new();
    };
    let folded = fold_word(&last);
    let mut found = expand(searcher, &[f.words], Expand::Prefix(&folded));
    if last != folded {
        found.extend(expand(searcher, &[f.words], Expand::Prefix(&last)));
    }
    let head = &text[..from];
    let mut found = prefer_exact_letters(found);
    if is_russian(&last) {
        // A word typed in Russian letters is completed with Russian words first: Belarusian
        // or Kazakh words of the same beginning ("развіцця", "өскемен") come after them.
        found.sort_by_key(|w| !is_russian(w));
    }
    found
        .into_iter()
        .take(n)
        .map(|w| Completion {
            text: format!("{head}{w}"),
            kind: "word".into(),
            code: None,
            id: None,
        })
        .collect()
}
