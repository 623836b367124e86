//! A fuzzer on stable Rust for every decoder a peer, a client or a file reaches: the envelope
//! and bodies through validation, bodies signed after mutation (so that field rules are reached,
//! not only the signature check), the CBOR scanner, reconciliation frames, the HTTP submission
//! body, and Markdown/YAML record input.
//!
//! Inputs are structure-aware mutations of valid seeds (bit flips, CBOR heads with huge or
//! indefinite lengths, insertions, deletions, duplications, truncations, splices) and plain
//! random bytes, from a seeded generator so that any failure replays. A target fails by
//! panicking; the programs that drive it (`tests/tests/fuzz.rs`, 20,000 cases per target, and
//! `tests/examples/fuzz.rs`, 1,000,000) also cap the memory each case may allocate.

use std::sync::Arc;

use accord_core::devnet::DevFederation;
use accord_core::object::{Limits, TargetType};
use accord_core::record_input::{RecordInput, split_front_matter};
use accord_core::{
    NoRecords, Object, ObjectId, ObjectType, Retraction, Revocation, SignedObject, Timestamp,
    TrustView, cbor, validate_with,
};
use accord_sync::{Initiator, Request, Response, SyncIndex, respond};

/// A small deterministic generator (xorshift64*).
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next_u64() % n as u64) as usize
        }
    }
}

/// Bytes that matter to a CBOR decoder: heads of every major type with the largest lengths,
/// indefinite lengths, breaks, and the simple values.
const INTERESTING: &[&[u8]] = &[
    &[0x00],
    &[0xff],
    &[0x1b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
    &[0x5b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
    &[0x7b, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
    &[0x9b, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00],
    &[0xbb, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00],
    &[0x5f],
    &[0x9f],
    &[0xbf],
    &[0xc0],
    &[0xd8, 0x18],
    &[0xf4],
    &[0xf6],
    &[0xf9, 0x7e, 0x00],
    &[0xfb, 0x7f, 0xf8, 0, 0, 0, 0, 0, 0],
    &[0x1c],
    &[0x3f],
    &[0x9a, 0xff, 0xff, 0xff, 0xff],
    &[0x5a, 0x00, 0x10, 0x00, 0x00],
];

/// One mutated input from `seeds`.
pub fn mutate(rng: &mut Rng, seeds: &[Vec<u8>]) -> Vec<u8> {
    if rng.below(10) == 0 {
        let n = rng.below(512);
        return (0..n).map(|_| rng.next_u64() as u8).collect();
    }
    let mut b = seeds[rng.below(seeds.len())].clone();
    for _ in 0..=rng.below(4) {
        let len = b.len();
        match rng.below(8) {
            0 if len > 0 => {
                let i = rng.below(len);
                b[i] ^= 1 << rng.below(8);
            }
            1 if len > 0 => {
                let i = rng.below(len);
                b[i] = rng.next_u64() as u8;
            }
            2 => {
                let i = rng.below(len + 1);
                let x = INTERESTING[rng.below(INTERESTING.len())];
                b.splice(i..i, x.iter().copied());
            }
            3 if len > 0 => {
                let i = rng.below(len);
                let x = INTERESTING[rng.below(INTERESTING.len())];
                let end = (i + x.len()).min(len);
                b.splice(i..end, x.iter().copied());
            }
            4 if len > 0 => {
                let i = rng.below(len);
                let j = (i + 1 + rng.below(64)).min(len);
                b.drain(i..j);
            }
            5 if len > 0 => {
                let i = rng.below(len);
                let j = (i + 1 + rng.below(256)).min(len);
                let chunk = b[i..j].to_vec();
                let at = rng.below(b.len() + 1);
                b.splice(at..at, chunk);
            }
            6 => b.truncate(rng.below(len + 1)),
            _ => {
                let other = &seeds[rng.below(seeds.len())];
                if !other.is_empty() {
                    let from = rng.below(other.len());
                    let at = rng.below(len + 1);
                    b.truncate(at);
                    b.extend_from_slice(&other[from..]);
                }
            }
        }
    }
    b
}

/// The seeds and the state the targets need.
#[derive(Debug)]
pub struct Corpus {
    pub fed: DevFederation,
    pub trust: TrustView,
    pub now: Timestamp,
    /// Valid envelopes of every type.
    pub envelopes: Vec<Vec<u8>>,
    /// Their body bytes.
    pub bodies: Vec<Vec<u8>>,
    /// Valid reconciliation requests and responses.
    pub frames: Vec<Vec<u8>>,
    /// Valid submission bodies (one envelope, arrays of envelopes).
    pub submissions: Vec<Vec<u8>>,
    /// The sample records (Markdown with front matter).
    pub markdown: Vec<Vec<u8>>,
    pub snapshot: Arc<accord_sync::Snapshot>,
}

impl Corpus {
    pub fn new(markdown: Vec<Vec<u8>>) -> Corpus {
        let created = Timestamp(1_750_000_000_000);
        let fed = DevFederation::new(&["KZ", "BY", "AM"], [9; 32], created)
            .unwrap_or_else(|e| panic!("devnet: {e}"));
        let now = Timestamp(created.0 + 86_400_000);
        let (mut trust, _) = TrustView::from_genesis(fed.genesis.as_bytes())
            .unwrap_or_else(|e| panic!("genesis: {e}"));
        for o in fed.trust_objects() {
            if let accord_core::Verdict::Accepted(v) =
                validate_with(o.as_bytes(), &trust, &NoRecords, now)
            {
                trust.apply(&v);
            }
        }
        let rec = fed.record(0, "Fuzz seed record", Timestamp(created.0 + 1000));
        let retraction = Object::Retraction(Retraction {
            object_type: ObjectType::Retraction,
            federation: fed.federation(),
            created: Timestamp(created.0 + 2000),
            member: fed.members[0].code.clone(),
            record: rec.id(),
            reason: "seed".into(),
        })
        .sign(&fed.members[0].root);
        let revocation = Object::Revocation(Revocation {
            object_type: ObjectType::Revocation,
            federation: fed.federation(),
            created: Timestamp(created.0 + 3000),
            member: fed.members[1].code.clone(),
            target_type: TargetType::Delegation,
            target: fed.delegation(1).id(),
            effective: Timestamp(created.0 + 3000),
            reason: Some("seed".into()),
        })
        .sign(&fed.members[1].root);
        let mut signed: Vec<SignedObject> = vec![fed.genesis.clone(), rec, retraction, revocation];
        signed.extend(fed.trust_objects());
        let envelopes: Vec<Vec<u8>> = signed.iter().map(|s| s.as_bytes().to_vec()).collect();
        let bodies: Vec<Vec<u8>> = signed.iter().map(|s| s.body().to_vec()).collect();

        let mut index = SyncIndex::new(
            signed
                .iter()
                .enumerate()
                .map(|(i, s)| (Timestamp(created.0 + i as u64), s.id())),
        );
        let snapshot = index.snapshot();
        let mut frames = Vec::new();
        if let Ok((_, first)) = Initiator::start(snapshot.clone()) {
            if let Ok(answer) = respond(snapshot.clone(), &first) {
                frames.push(Response::Reconcile(answer).encode());
            }
            frames.push(Request::Reconcile(first).encode());
        }
        frames.push(Request::Fetch(signed.iter().map(|s| s.id()).collect()).encode());
        frames.push(Response::Objects(envelopes.clone()).encode());
        frames.push(Response::Refused("busy".into()).encode());

        let mut submissions = envelopes.clone();
        let mut batch = vec![0x80 | envelopes.len().min(23) as u8];
        for e in envelopes.iter().take(23) {
            batch.extend_from_slice(e);
        }
        submissions.push(batch);
        Corpus {
            fed,
            trust,
            now,
            envelopes,
            bodies,
            frames,
            submissions,
            markdown,
            snapshot,
        }
    }
}

/// A fuzz target: a name and a function of one input.
pub type Target = (&'static str, fn(&Corpus, &mut Rng));

/// Every target.
pub fn targets() -> Vec<Target> {
    vec![
        ("envelope", envelope),
        ("signed-body", signed_body),
        ("cbor-scanner", scanner),
        ("sync-frames", sync_frames),
        ("http-submission", submission),
        ("record-input", record_input),
    ]
}

fn envelope(c: &Corpus, rng: &mut Rng) {
    let b = mutate(rng, &c.envelopes);
    let _ = validate_with(&b, &c.trust, &NoRecords, c.now);
    let _ = SignedObject::decode_draft(&b, usize::MAX, Limits::default().scan());
}

fn signed_body(c: &Corpus, rng: &mut Rng) {
    let body = mutate(rng, &c.bodies);
    let mut s = SignedObject::unsigned(body);
    let key = &c.fed.members[rng.below(c.fed.members.len())];
    let k = if rng.below(2) == 0 {
        &key.root
    } else {
        &key.publisher
    };
    s.add_signature(k);
    let _ = validate_with(s.as_bytes(), &c.trust, &NoRecords, c.now);
    let _ = accord_core::object::body_json(s.body());
}

fn scanner(c: &Corpus, rng: &mut Rng) {
    let b = mutate(rng, &c.envelopes);
    let scan = Limits::default().scan();
    let _ = cbor::item_len(&b, scan);
    let _ = cbor::split_array(&b, scan);
    let _ = cbor::split_sequence(&b, scan);
    let _ = cbor::array_head(&b);
}

fn sync_frames(c: &Corpus, rng: &mut Rng) {
    let b = mutate(rng, &c.frames);
    let scan = Limits::default().scan();
    if let Ok(Request::Reconcile(m)) = Request::decode(&b) {
        let _ = respond(c.snapshot.clone(), &m);
    }
    if let Ok(Response::Reconcile(m)) = Response::decode(&b, scan)
        && let Ok((mut session, _)) = Initiator::start(c.snapshot.clone())
    {
        let _ = session.on_message(&m);
    }
    let _ = accord_sync::decode_objects(&b, scan);
    // A raw negentropy message as either side would receive it.
    let _ = respond(c.snapshot.clone(), &b);
    if let Ok((mut session, _)) = Initiator::start(c.snapshot.clone()) {
        let _ = session.on_message(&b);
    }
}

/// The submission path of `POST /v1/objects`: batch detection, splitting, validation.
fn submission(c: &Corpus, rng: &mut Rng) {
    let b = mutate(rng, &c.submissions);
    let _ = cbor::array_head(&b);
    let scan = cbor::ScanLimits {
        max_depth: 64,
        max_entries: 1024,
    };
    if let Ok(Some(parts)) = cbor::split_array(&b, scan) {
        for p in parts.iter().take(32) {
            let _ = validate_with(p, &c.trust, &NoRecords, c.now);
        }
    }
}

/// What `accord sign` does with a Markdown or JSON file before signing.
fn record_input(c: &Corpus, rng: &mut Rng) {
    let b = mutate(rng, &c.markdown);
    let text = String::from_utf8_lossy(&b);
    let parsed: Option<(RecordInput, Option<String>)> = if text.trim_start().starts_with('{') {
        serde_json::from_str(&text).ok().map(|r| (r, None))
    } else {
        split_front_matter(&text).and_then(|(yaml, body)| {
            serde_norway::from_str::<RecordInput>(yaml)
                .ok()
                .map(|r| (r, Some(body.to_string())))
        })
    };
    if let Some((input, body)) = parsed
        && let Ok(rec) = input.into_record(c.fed.federation(), c.now, body.as_deref())
    {
        let _ = accord_core::validate::check_record_fields(&rec, c.trust.charter());
        let _ = Object::Record(rec).encode_body();
    }
}

/// Runs `cases` inputs of every target, calling `before_case` before each (where a driver
/// sets its memory cap); returns the cases run per target.
pub fn run(
    corpus: &Corpus,
    seed: u64,
    cases: u64,
    mut before_case: impl FnMut(),
) -> Vec<(&'static str, u64)> {
    let mut done = Vec::new();
    for (name, target) in targets() {
        let tag = ObjectId::of_body(name.as_bytes()).0;
        let mut rng = Rng::new(
            seed ^ u64::from_be_bytes([
                tag[0], tag[1], tag[2], tag[3], tag[4], tag[5], tag[6], tag[7],
            ]),
        );
        for _ in 0..cases {
            before_case();
            target(corpus, &mut rng);
        }
        done.push((name, cases));
    }
    done
}
