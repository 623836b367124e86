//! Query latency on an existing index directory (a node's `<data_dir>/search`, the node
//! stopped): the benchmark program's queries, each run `N` times, p50/p99 per query — for
//! profiling the search path alone. With `cold` after `N`, every run asks a new searcher (an
//! empty result cache), so every run is a first run.
//! Run: `cargo run --release -p accord-search --example query_profile DIR [N] [cold]`.

use std::time::Instant;

use accord_search::{SearchIndex, SearchQuery};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let dir = args.next().ok_or("usage: query_profile DIR [N]")?;
    let runs: usize = args.next().map_or(Ok(20), |n| n.parse())?;
    let cold = args.next().as_deref() == Some("cold");
    let index = SearchIndex::open(std::path::Path::new(&dir))?;
    let searcher = index.searcher();
    println!("{} documents", searcher.num_docs());
    let text = |t: &str| SearchQuery {
        text: Some(t.to_string()),
        limit: 20,
        ..Default::default()
    };
    let filter = |member: &str, lang: &str| SearchQuery {
        members: vec![member.to_string()],
        langs: vec![lang.to_string()],
        limit: 20,
        ..Default::default()
    };
    let queries = [
        ("text цифровых услуг", text("цифровых услуг")),
        (
            "text guidance digital services",
            text("guidance digital services"),
        ),
        (
            "text персональных данных граждан",
            text("персональных данных граждан"),
        ),
        ("text interoperability", text("interoperability")),
        ("filter KZ ru", filter("KZ", "ru")),
        ("filter KZ en", filter("KZ", "en")),
        ("filter BY ru", filter("BY", "ru")),
    ];
    for (name, q) in &queries {
        let mut times = Vec::with_capacity(runs);
        let mut total = 0;
        for _ in 0..runs {
            let fresh;
            let s = if cold {
                fresh = index.searcher();
                &fresh
            } else {
                &searcher
            };
            let t = Instant::now();
            total = s.search(q)?.total;
            times.push(t.elapsed().as_secs_f64() * 1e3);
        }
        let first = times[0];
        times.sort_by(f64::total_cmp);
        let pct = |p: f64| times[((times.len() - 1) as f64 * p).round() as usize];
        println!(
            "{name:40} total {total:>8}  first {first:7.2} ms  p50 {:7.2} ms  p99 {:7.2} ms",
            pct(0.5),
            pct(0.99)
        );
    }
    Ok(())
}
