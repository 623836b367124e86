//! The analyst web UI: server-rendered HTML (maud templates, escaped by construction), in Russian
//! and English, with a few lines of progressive JavaScript (live "N new" notice, auto-applying
//! filters). Nothing is loaded from outside the node.

mod pages;

use axum::Router;
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use maud::{DOCTYPE, Markup, PreEscaped, html};

use accord_node::NodeHandle;

pub(crate) fn routes() -> Router<NodeHandle> {
    Router::new()
        .route("/", get(pages::search))
        .route("/records/{id}", get(pages::record))
        .route("/records/{id}/object.cbor", get(pages::download))
        .route("/overview", get(pages::overview))
        .route("/federation", get(pages::federation))
        .route("/network", get(pages::network))
        .route(
            "/static/style.css",
            get(|| async { ([(header::CONTENT_TYPE, "text/css")], STYLE) }),
        )
        .route(
            "/static/app.js",
            get(|| async { ([(header::CONTENT_TYPE, "text/javascript")], SCRIPT) }),
        )
}

/// The interface language.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Lang {
    Ru,
    En,
}

impl Lang {
    pub fn code(self) -> &'static str {
        match self {
            Lang::Ru => "ru",
            Lang::En => "en",
        }
    }

    /// From `?lang=`, then the `accord_lang` cookie, then `Accept-Language`; English otherwise.
    pub fn detect(params: &[(String, String)], headers: &HeaderMap) -> (Lang, bool) {
        let parse = |s: &str| match s.trim() {
            "ru" => Some(Lang::Ru),
            "en" => Some(Lang::En),
            _ => None,
        };
        if let Some(l) = params
            .iter()
            .find(|(k, _)| k == "lang")
            .and_then(|(_, v)| parse(v))
        {
            return (l, true);
        }
        let cookie = headers
            .get(header::COOKIE)
            .and_then(|c| c.to_str().ok())
            .unwrap_or("");
        if let Some(l) = cookie
            .split(';')
            .filter_map(|p| p.trim().strip_prefix("accord_lang="))
            .find_map(parse)
        {
            return (l, false);
        }
        let accept = headers
            .get(header::ACCEPT_LANGUAGE)
            .and_then(|a| a.to_str().ok())
            .unwrap_or("");
        for part in accept.split(',') {
            let tag = part.split(';').next().unwrap_or("").trim().to_lowercase();
            if tag.starts_with("ru") || tag.starts_with("be") || tag.starts_with("kk") {
                return (Lang::Ru, false);
            }
            if tag.starts_with("en") {
                return (Lang::En, false);
            }
        }
        (Lang::En, false)
    }

    /// A message in this language.
    pub fn t(self, key: &str) -> &'static str {
        let (ru, en) = match key {
            "title" => ("Accord — обмен опытом", "Accord — experience exchange"),
            "search" => ("Поиск", "Search"),
            "overview" => ("Обзор", "Overview"),
            "federation" => ("Федерация", "Federation"),
            "network" => ("Сеть", "Network"),
            "search_placeholder" => (
                "Что ищем? Например: электронное правительство",
                "What are you looking for? e.g. digital skills",
            ),
            "apply" => ("Применить", "Apply"),
            "clear" => ("Сбросить", "Clear filters"),
            "results" => ("Найдено записей", "Records found"),
            "next" => ("Следующая страница", "Next page"),
            "first" => ("В начало", "First page"),
            "new_records" => ("новых записей — обновить", "new records — refresh"),
            "member" => ("Государство", "Member state"),
            "kind" => ("Вид", "Kind"),
            "direction" => ("Направление", "Direction"),
            "lang" => ("Язык", "Language"),
            "status" => ("Статус", "Status"),
            "year" => ("Год", "Year"),
            "publisher" => ("Издатель", "Publisher"),
            "no_results" => ("Ничего не найдено.", "Nothing found."),
            "original" => ("оригинал", "original"),
            "tags" => ("Теги", "Tags"),
            "links" => ("Ссылки", "Links"),
            "attachments" => ("Вложения", "Attachments"),
            "references" => ("Связанные записи", "References"),
            "history" => ("История", "History"),
            "superseded_by" => ("Заменена записью", "Superseded by"),
            "supersedes" => ("Заменяет запись", "Supersedes"),
            "retracted_by" => ("Отозвана", "Retracted"),
            "provenance" => ("Происхождение", "Provenance"),
            "signature_valid" => ("Подпись действительна", "Signature valid"),
            "signature_invalid" => ("Подпись НЕ действительна", "Signature NOT valid"),
            "delegation" => ("Делегирование", "Delegation"),
            "delegated_by" => ("Подписано корневым ключом", "Signed by root key"),
            "scope" => ("Охват", "Scope"),
            "all" => ("все", "all"),
            "window" => ("Срок", "Window"),
            "root_key" => ("Корневой ключ государства", "Member root key"),
            "charter" => ("Устав", "Charter"),
            "download" => ("Скачать подписанный объект", "Download the signed object"),
            "verify" => ("Проверка без сети", "Verify offline"),
            "created" => ("Создано", "Created"),
            "matrix" => (
                "Кто чем делится: записи по государствам и направлениям",
                "Who shares what: records by member and direction",
            ),
            "over_time" => ("Публикации по месяцам", "Publications per month"),
            "recent" => ("Последние записи", "Most recent records"),
            "members" => ("Участники", "Members"),
            "threshold" => ("Порог изменения устава", "Amendment threshold"),
            "directions" => ("Направления", "Directions"),
            "kinds" => ("Виды записей", "Record kinds"),
            "publishers" => ("Издатели", "Publishers"),
            "peers" => ("Узлы-соседи", "Peers"),
            "this_node" => ("Этот узел", "This node"),
            "admitted" => ("допущен", "admitted"),
            "not_admitted" => ("не допущен", "not admitted"),
            "since" => ("с", "since"),
            "last_sync" => ("Последняя сверка", "Last reconciliation"),
            "sync_running" => ("идёт сверка", "reconciling now"),
            "not_found" => (
                "Запись не найдена на этом узле.",
                "This record is not stored on this node.",
            ),
            "code" => ("Код", "Code"),
            "did_you_mean" => ("Возможно, вы имели в виду", "Did you mean"),
            "approximate" => (
                "Точных совпадений мало: показаны и похожие написания и начала слов — после точных.",
                "Few exact matches: similar spellings and word beginnings are shown too, after them.",
            ),
            "also_searched" => ("Искали также", "Also searched"),
            "also_direction" => (
                "Включены записи направления",
                "Including records of the direction",
            ),
            "name" => ("Название", "Name"),
            _ => ("?", "?"),
        };
        match self {
            Lang::Ru => ru,
            Lang::En => en,
        }
    }

    /// A date in this language's usual format.
    pub fn date(self, t: accord_core::Timestamp) -> String {
        let d = t.date();
        let (y, m, day) = (&d[..4], &d[5..7], &d[8..10]);
        match self {
            Lang::Ru => format!("{day}.{m}.{y}"),
            Lang::En => {
                let months = [
                    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov",
                    "Dec",
                ];
                let mi: usize = m.parse().unwrap_or(1);
                format!(
                    "{} {} {y}",
                    day.trim_start_matches('0'),
                    months[mi.clamp(1, 12) - 1]
                )
            }
        }
    }
}

/// A member's flag (regional indicator symbols) and code.
pub(crate) fn flag(code: &str) -> String {
    let f: String = code
        .chars()
        .filter(|c| c.is_ascii_uppercase())
        .map(|c| char::from_u32(0x1F1E6 + (c as u32 - 'A' as u32)).unwrap_or(c))
        .collect();
    format!("{f} {code}")
}

/// The page frame: header, navigation, language switch, content.
pub(crate) fn layout(
    lang: Lang,
    title: &str,
    current: &str,
    path_and_query: &str,
    body: Markup,
) -> Markup {
    let switch = |l: Lang| {
        let sep = if path_and_query.contains('?') {
            "&"
        } else {
            "?"
        };
        format!("{path_and_query}{sep}lang={}", l.code())
    };
    html! {
        (DOCTYPE)
        html lang=(lang.code()) {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · Accord" }
                link rel="stylesheet" href="/static/style.css";
            }
            body {
                a.skip href="#main" { "Skip to content" }
                header {
                    a.brand href="/" { "Accord" }
                    nav aria-label="main" {
                        @for (href, key) in [("/", "search"), ("/overview", "overview"), ("/federation", "federation"), ("/network", "network")] {
                            a href=(href) aria-current=[(current == key).then_some("page")] { (lang.t(key)) }
                        }
                    }
                    span.langs {
                        a href=(switch(Lang::Ru)) lang="ru" aria-current=[(lang == Lang::Ru).then_some("true")] { "Рус" }
                        " · "
                        a href=(switch(Lang::En)) lang="en" aria-current=[(lang == Lang::En).then_some("true")] { "Eng" }
                    }
                }
                main #main { (body) }
                script src="/static/app.js" defer {}
            }
        }
    }
}

/// Wraps a page, remembering an explicit language choice in a cookie.
pub(crate) fn page(markup: Markup, set_lang: Option<Lang>) -> Response {
    let mut r = (
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        markup.into_string(),
    )
        .into_response();
    if let Some(l) = set_lang
        && let Ok(v) = format!(
            "accord_lang={}; Path=/; Max-Age=31536000; SameSite=Lax",
            l.code()
        )
        .parse()
    {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    r
}

/// Renders record Markdown safely: raw HTML is shown as text, links other than http(s) and
/// mailto lose their target, images become plain links (nothing is loaded from elsewhere).
pub(crate) fn markdown(src: &str) -> Markup {
    use pulldown_cmark::{Event, Options, Parser, Tag, TagEnd};
    let safe = |url: &str| {
        let u = url.trim().to_ascii_lowercase();
        u.starts_with("http://") || u.starts_with("https://") || u.starts_with("mailto:")
    };
    let mut in_image = false;
    let events =
        Parser::new_ext(src, Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH).map(|ev| {
            match ev {
                Event::Html(h) | Event::InlineHtml(h) => Event::Text(h),
                Event::Start(Tag::Link {
                    link_type,
                    dest_url,
                    title,
                    id,
                }) => {
                    let dest_url = if safe(&dest_url) {
                        dest_url
                    } else {
                        "#".into()
                    };
                    Event::Start(Tag::Link {
                        link_type,
                        dest_url,
                        title,
                        id,
                    })
                }
                Event::Start(Tag::Image {
                    link_type,
                    dest_url,
                    title,
                    id,
                }) => {
                    in_image = true;
                    let dest_url = if safe(&dest_url) {
                        dest_url
                    } else {
                        "#".into()
                    };
                    Event::Start(Tag::Link {
                        link_type,
                        dest_url,
                        title,
                        id,
                    })
                }
                Event::End(TagEnd::Image) if in_image => {
                    in_image = false;
                    Event::End(TagEnd::Link)
                }
                other => other,
            }
        });
    let mut out = String::new();
    pulldown_cmark::html::push_html(&mut out, events);
    PreEscaped(out)
}

const STYLE: &str = r#"
:root { --fg:#1b1f24; --muted:#57606a; --bg:#fff; --accent:#0b57d0; --line:#d0d7de; --soft:#f6f8fa; }
* { box-sizing: border-box; }
body { margin:0; font:16px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "Noto Sans", sans-serif; color:var(--fg); background:var(--bg); }
a { color:var(--accent); } a:focus, button:focus, input:focus { outline:3px solid #f4b400; outline-offset:2px; }
.skip { position:absolute; left:-999px; } .skip:focus { left:8px; top:8px; background:#fff; padding:4px; }
header { display:flex; flex-wrap:wrap; gap:16px; align-items:center; padding:10px 20px; border-bottom:1px solid var(--line); background:var(--soft); }
.brand { font-weight:700; font-size:1.2em; text-decoration:none; color:var(--fg); }
nav a { margin-right:14px; text-decoration:none; } nav a[aria-current=page] { font-weight:700; text-decoration:underline; }
.langs { margin-left:auto; } .langs a[aria-current=true] { font-weight:700; }
main { max-width:1200px; margin:0 auto; padding:16px 20px; }
.searchbar { display:flex; gap:8px; } .searchbar input[type=search] { flex:1; padding:8px; font-size:1.05em; border:1px solid var(--line); border-radius:6px; }
button { padding:8px 14px; border:1px solid var(--accent); background:var(--accent); color:#fff; border-radius:6px; cursor:pointer; }
.layout { display:grid; grid-template-columns: 260px 1fr; gap:24px; margin-top:16px; }
@media (max-width: 760px) { .layout { grid-template-columns: 1fr; } }
fieldset { border:1px solid var(--line); border-radius:6px; margin:0 0 12px; padding:8px 10px; }
legend { font-weight:600; } fieldset label { display:block; font-size:.92em; }
.count { color:var(--muted); font-size:.85em; }
.result { border-bottom:1px solid var(--line); padding:12px 0; } .result h2 { font-size:1.1em; margin:0 0 4px; }
.meta { color:var(--muted); font-size:.9em; } .badge { display:inline-block; border:1px solid var(--line); border-radius:10px; padding:0 7px; font-size:.8em; margin-right:4px; background:var(--soft); }
.snippet b { background:#fff3b0; }
.notice { display:none; background:#e7f0ff; border:1px solid var(--accent); padding:8px; border-radius:6px; margin:8px 0; }
.panel { border:1px solid var(--line); border-radius:8px; padding:12px 16px; background:var(--soft); margin:16px 0; }
.panel dt { font-weight:600; } .panel dd { margin:0 0 8px; word-break:break-all; }
table { border-collapse:collapse; } td, th { border:1px solid var(--line); padding:4px 8px; text-align:left; }
.heat td.n { text-align:center; min-width:44px; }
code, pre { background:var(--soft); border-radius:4px; padding:2px 4px; } pre { padding:8px; overflow-x:auto; }
.body { max-width:800px; }
@media print { header, .notice, form { display:none; } }
"#;

const SCRIPT: &str = r#"
(function () {
  // Filters apply as soon as a box is ticked (the Apply button works without JavaScript).
  document.querySelectorAll('form.filters input[type=checkbox]').forEach(function (box) {
    box.addEventListener('change', function () { box.form.submit(); });
  });
  // Completions while typing, from /v1/suggest (the search works without them).
  var q = document.getElementById('q');
  var list = document.getElementById('suggestions');
  if (q && list && window.fetch) {
    var timer = null, asked = '';
    q.addEventListener('input', function () {
      clearTimeout(timer);
      timer = setTimeout(function () {
        var text = q.value;
        if (text.trim().length < 2 || text === asked) { return; }
        asked = text;
        fetch('/v1/suggest?q=' + encodeURIComponent(text)).then(function (r) {
          return r.ok ? r.json() : { completions: [] };
        }).then(function (v) {
          if (q.value !== text) { return; }
          list.textContent = '';
          v.completions.forEach(function (c) {
            var o = document.createElement('option');
            o.value = c.text;
            list.appendChild(o);
          });
        }).catch(function () {});
      }, 150);
    });
  }
  // A live notice of new matching records.
  var notice = document.getElementById('live');
  if (notice && window.EventSource) {
    var n = 0;
    var src = new EventSource('/v1/stream' + (notice.dataset.query || ''));
    src.addEventListener('record', function () {
      n += 1;
      notice.querySelector('.n').textContent = n;
      notice.style.display = 'block';
    });
  }
})();
"#;
