//! The analyst web UI: server-rendered HTML (maud templates, escaped by construction), in Russian
//! and English, with a few lines of progressive JavaScript (live "N new" notice, completions,
//! copy and print buttons, the roles of tables laid out as cards; filters apply with a visible
//! button). Nothing is loaded from outside
//! the node. Pages: search, record, overview, compare, federation, network; exports and Atom
//! feeds of a search are in `crate::exports`.

mod pages;

use axum::Router;
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use std::collections::BTreeMap;

use maud::{DOCTYPE, Markup, PreEscaped, html};

use accord_node::NodeHandle;

pub(crate) fn routes() -> Router<NodeHandle> {
    Router::new()
        .route("/", get(pages::search))
        .route("/records/{id}", get(pages::record))
        .route("/records/{id}/object.cbor", get(pages::download))
        .route("/records/{id}/proof.cbor", get(pages::proof))
        .route("/overview", get(pages::overview))
        .route("/export.csv", get(crate::exports::csv))
        .route("/export.jsonl", get(crate::exports::jsonl))
        .route("/export.cbor", get(crate::exports::cbor))
        .route("/feeds/records.atom", get(crate::exports::atom))
        .route("/federation", get(pages::federation))
        .route("/network", get(pages::network))
        .route("/health", get(pages::health))
        .route("/compare", get(pages::compare))
        .route("/favicon.svg", get(favicon))
        .route("/favicon.ico", get(favicon))
        .route(
            "/static/style.css",
            get(|| async { ([(header::CONTENT_TYPE, "text/css")], STYLE) }),
        )
        .route(
            "/static/app.js",
            get(|| async { ([(header::CONTENT_TYPE, "text/javascript")], SCRIPT) }),
        )
        .fallback(pages::no_page)
}

/// A query string from parameters, percent-encoded.
pub(crate) fn qs(params: &[(String, String)]) -> String {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    // One buffer for the whole query (a page writes it into dozens of links).
    let mut out = String::with_capacity(params.iter().map(|(k, v)| k.len() + v.len() + 2).sum());
    let enc = |out: &mut String, s: &str| {
        for b in s.bytes() {
            match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                    out.push(b as char)
                }
                _ => {
                    out.push('%');
                    out.push(HEX[usize::from(b >> 4)] as char);
                    out.push(HEX[usize::from(b & 15)] as char);
                }
            }
        }
    };
    for (i, (k, v)) in params.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        enc(&mut out, k);
        out.push('=');
        enc(&mut out, v);
    }
    out
}

async fn favicon() -> Response {
    (
        [
            (header::CONTENT_TYPE, "image/svg+xml"),
            (header::CACHE_CONTROL, "max-age=86400"),
        ],
        FAVICON,
    )
        .into_response()
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
        // The reader's languages by their weight (`q`, 1 when not given; 0 is "not this one"),
        // in the order sent among equals: the first of Russian and English listed. A reader who
        // lists neither but a member's language the interface lacks gets Russian, the
        // Commonwealth's working language.
        let mut wanted: Vec<(String, f32)> = accept
            .split(',')
            .filter_map(|part| {
                let mut it = part.split(';');
                let tag = it.next()?.trim().to_ascii_lowercase();
                let q = it
                    .find_map(|p| p.trim().strip_prefix("q=").map(str::to_string))
                    .map_or(Some(1.0), |q| q.trim().parse::<f32>().ok())?;
                (!tag.is_empty() && q > 0.0).then_some((tag, q))
            })
            .collect();
        wanted.sort_by(|a, b| b.1.total_cmp(&a.1));
        let primary = |tag: &str| tag.split(['-', '_']).next().unwrap_or("").to_string();
        for (tag, _) in &wanted {
            match primary(tag).as_str() {
                "ru" => return (Lang::Ru, false),
                "en" => return (Lang::En, false),
                _ => {}
            }
        }
        let member = wanted.iter().any(|(tag, _)| {
            matches!(
                primary(tag).as_str(),
                "be" | "kk" | "ky" | "tg" | "uz" | "hy" | "az" | "tk"
            )
        });
        (if member { Lang::Ru } else { Lang::En }, false)
    }

    /// A message in this language.
    pub fn t(self, key: &str) -> &'static str {
        let (ru, en) = match key {
            "title" => ("Accord — обмен опытом", "Accord — experience exchange"),
            "search" => ("Поиск", "Search"),
            "overview" => ("Обзор", "Overview"),
            "federation" => ("Федерация", "Federation"),
            "network" => ("Соединения", "Connections"),
            "search_placeholder" => ("Например: электронное правительство", "e.g. digital skills"),
            "apply" => ("Применить", "Apply"),
            "clear" => ("Сбросить", "Clear filters"),
            "remove_filter" => ("убрать фильтр", "remove this filter"),
            "results" => ("Найдено записей", "Records found"),
            "next" => ("Следующая страница", "Next page"),
            "first" => ("В начало", "First page"),
            "previous" => ("Предыдущая страница", "Previous page"),
            "shown" => ("Записи", "Records"),
            "shown_one" => ("Запись", "Record"),
            "of" => ("из", "of"),
            "live_reconnected" => (
                "Связь с узлом восстановлена: возможно, появились новые записи",
                "The connection to the node is back: there may be new records",
            ),
            "refresh" => ("обновить", "refresh"),
            "live_stop" => ("Остановить обновления", "Stop live updates"),
            "new_record_forms" => (
                "новая запись|новые записи|новых записей",
                "new record|new records|new records",
            ),
            "member" => ("Государство", "Member state"),
            "kind" => ("Вид", "Kind"),
            "direction" => ("Направление", "Direction"),
            "lang" => ("Язык", "Language"),
            "available_in" => ("Есть на языке", "Available in"),
            "status" => ("Статус", "Status"),
            "year" => ("Год", "Year"),
            "publisher" => ("Издатель", "Publisher"),
            "no_results" => ("Ничего не найдено.", "Nothing found."),
            "hidden_matches" => (
                "Подходящих записей среди заменённых новыми редакциями, отозванных и подписанных отозванным ключом",
                "Matching records among those superseded by newer editions, retracted, or signed with a revoked key",
            ),
            "show_them" => ("Показать их", "Show them"),
            "past_last" => (
                "На этой странице записей нет: результаты закончились раньше.",
                "There are no records on this page: the results end before it.",
            ),
            "last_page" => ("К последней странице", "Go to the last page"),
            "original" => ("оригинал", "original"),
            "tags" => ("Теги", "Tags"),
            "tag" => ("Тег", "Tag"),
            "received_here" => ("Получено этим узлом", "Received by this node"),
            "from_node_of" => ("от узла участника", "from the node of"),
            "from_peer" => (
                "от узла, не сертифицированного участником",
                "from a node no member certifies",
            ),
            "received_local" => (
                "опубликовано через этот узел",
                "published through this node",
            ),
            "received_import" => ("из резервной копии", "from a backup"),
            "received_preload" => (
                "из файлов конфигурации узла",
                "from the node's configured files",
            ),
            "links" => ("Ссылки", "Links"),
            "attachments" => ("Вложения", "Attachments"),
            "references" => ("Связанные записи", "References"),
            "history" => ("История", "History"),
            "superseded_by" => ("Заменена записью", "Superseded by"),
            "supersedes" => ("Заменяет запись", "Supersedes"),
            "retracted_by" => ("Отозвана", "Retracted"),
            "retracted_on" => ("Отозвана", "Retracted on"),
            "provenance" => ("Происхождение", "Provenance"),
            "signature_valid" => ("Подпись действительна", "Signature valid"),
            "signature_invalid" => ("Подпись НЕ действительна", "Signature NOT valid"),
            "delegation" => ("Делегирование", "Delegation"),
            "delegated_by" => ("Подписано корневым ключом", "Signed by root key"),
            "scope" => ("Охват", "Scope"),
            "all" => ("все", "all"),
            "window" => ("Полномочия действуют", "Valid"),
            "valid_from" => ("с", "from"),
            "valid_until" => ("по", "until"),
            "no_end" => ("без срока окончания", "with no end date"),
            "the_root_key_below" => ("✔ тем, что указан ниже", "✔ the one shown below"),
            "root_key" => ("Корневой ключ государства", "Member root key"),
            "charter" => ("Устав", "Charter"),
            "download" => ("Скачать подписанный объект", "Download the signed object"),
            "download_evidence" => (
                "Скачать подписанное свидетельство",
                "Download the signed evidence",
            ),
            "download_charter" => (
                "Скачать учредительный устав федерации (charter.cbor)",
                "Download the federation's founding charter (charter.cbor)",
            ),
            "download_proof" => (
                "Скачать то, что нужно для проверки: поправки устава, делегирование подписавшего, отзывы (proof.cbor)",
                "Download what checking it needs: charter amendments, the signer's delegation, revocations (proof.cbor)",
            ),
            "verify" => ("Проверка без сети", "Verify offline"),
            "created" => ("Создано", "Created"),
            "matrix" => (
                "Кто чем делится: записи по государствам и направлениям",
                "Who shares what: records by member and direction",
            ),
            "over_time" => ("Публикации по месяцам", "Publications per month"),
            "recent" => ("Последние записи", "Most recent records"),
            "members" => ("Государства", "Member states"),
            "threshold" => ("Порог изменения устава", "Amendment threshold"),
            "directions" => ("Направления", "Directions"),
            "kinds" => ("Виды записей", "Record kinds"),
            "publishers" => ("Издатели", "Publishers"),
            "peers" => ("Узлы-соседи", "Peers"),
            "this_node" => ("Этот узел", "This node"),
            "disk_free" => ("Свободно на диске", "Free on disk"),
            "disk_floor" => ("порог", "floor"),
            "mib" => ("МиБ", "MiB"),
            "admitted" => ("допущен", "admitted"),
            "not_admitted" => ("не допущен", "not admitted"),
            "since" => ("с", "since"),
            "last_sync" => ("Последняя сверка", "Last reconciliation"),
            "sync_running" => ("идёт сверка", "reconciling now"),
            "not_found" => (
                "Этот узел не хранит такую запись",
                "This node does not hold this record",
            ),
            "not_found_help" => (
                "Возможно, запись ещё не дошла до этого узла (узлы сверяются каждые несколько минут), была опубликована в другой федерации или ссылка набрана с ошибкой. Запись можно найти поиском.",
                "The record may not have reached this node yet (nodes reconcile every few minutes), may belong to another federation, or the link may be mistyped. Search may find it.",
            ),
            "code" => ("Код", "Code"),
            "did_you_mean" => ("Возможно, вы имели в виду", "Did you mean"),
            // Said both when the query as typed found nothing and when it found fewer than its
            // correction (a misspelt word loses its glossary terms and direction).
            "showing_for" => (
                "Показаны результаты исправленного запроса",
                "Showing results for the corrected query",
            ),
            "search_as_typed" => ("Искать как написано:", "Search instead for"),
            "no_words" => (
                "В запросе нет букв или цифр, по которым можно искать, поэтому он не учтён: показаны все записи, подходящие под фильтры. Запрос:",
                "The query has no letters or digits to search for, so it was left aside: all records that pass the filters are shown. The query:",
            ),
            "long_words" => (
                "Слово запроса длиннее 63 байт (32 кириллических или 64 латинских букв) — так выглядят хэш или идентификатор, а не слово текста, — поэтому ни одна запись не подходит. Идентификатор записи откройте по адресу /records/<идентификатор>. Запрос:",
                "A word of the query is 64 bytes or longer (32 Cyrillic or 64 Latin letters): a hash or an id, not a word of any text, so no record matches. Open a record by its id at /records/<id>. The query:",
            ),
            "approximate" => (
                "Точных совпадений мало или нет: показаны и похожие написания и начала слов — после точных.",
                "Few or no exact matches: similar spellings and word beginnings are shown too, after any exact ones.",
            ),
            "also_searched" => ("Искали также", "Also searched"),
            "also_direction" => (
                "Включены записи направления",
                "Including records of the direction",
            ),
            "also_member" => (
                "Включены записи государства-участника",
                "Including records of the member state",
            ),
            "name" => ("Название", "Name"),
            "skip_content" => ("К содержанию", "Skip to content"),
            "skip_results" => ("К результатам", "Skip to results"),
            "menu" => ("Разделы", "Sections"),
            "compare" => ("Сравнение", "Compare"),
            "sort" => ("Сортировка", "Sort"),
            "relevance" => ("по релевантности", "best match first"),
            // By when the record was signed and shared, not by the date of the document it
            // describes (a reader took "newest" for the latter).
            "newest" => ("сначала недавно опубликованные", "recently published first"),
            "oldest" => ("сначала давно опубликованные", "earliest published first"),
            // By the date of the document a record describes (when a law was adopted); records
            // without one last.
            "document_newest" => ("сначала новые документы", "latest documents first"),
            "document_oldest" => ("сначала старые документы", "earliest documents first"),
            "date_from" => ("Дата с", "From"),
            "date_to" => ("Дата по", "To"),
            "dates" => ("Период", "Period"),
            "doc_date" => ("Документ от", "Dated"),
            "shared" => ("опубликовано в сети", "shared"),
            "shared_period" => ("Опубликовано в сети", "Shared on the network"),
            "doc_period" => ("Дата документа", "Date of the document"),
            "doc_from" => ("Дата документа с", "Document dated from"),
            "doc_to" => ("Дата документа по", "Document dated until"),
            "shared_from" => ("Опубликовано с", "Shared from"),
            "all_records" => ("все записи", "all records"),
            "search_failed" => (
                "Поиск не выполнен (подробности на английском)",
                "The search could not be made",
            ),
            "body_plain" => (
                "Узел занят отображением других записей: текст показан без оформления.",
                "The node is busy showing other records: the text is shown without its layout.",
            ),
            "search_busy" => (
                "Узел занят другими поисками: повторите через несколько секунд.",
                "The node is busy with other searches: try again in a few seconds.",
            ),
            // The heading of a search that failed (the reason follows it, in English).
            "search_failed_title" => ("Поиск не выполнен", "The search could not be made"),
            "shared_to" => ("Опубликовано по", "Shared until"),
            "filters" => ("Фильтры", "Filters"),
            "export" => ("Выгрузить результаты", "Export the results"),
            "csv" => ("CSV для таблиц", "CSV for spreadsheets"),
            "jsonl" => ("строки JSON (JSONL)", "JSON lines (JSONL)"),
            "cbor" => ("подписанные объекты (CBOR)", "signed objects (CBOR)"),
            "follow" => ("Подписаться (Atom)", "Follow (Atom feed)"),
            "print" => ("Печать", "Print"),
            "copy" => ("Копировать", "Copy"),
            "copied" => ("Скопировано", "Copied"),
            "peer" => ("Узел", "Peer"),
            "connected_since" => ("Подключён", "Connected"),
            "rounds" => ("сверок", "rounds"),
            "fetched" => ("получено", "fetched"),
            "missing" => ("недостаёт", "missing"),
            "no_history" => (
                "Запись не заменялась и не отзывалась.",
                "The record has not been superseded or retracted.",
            ),
            "empty_help" => (
                "Попробуйте другие слова, уберите часть фильтров или расширьте период.",
                "Try other words, remove some filters or widen the period.",
            ),
            "empty_help_words" => (
                "Попробуйте другие или более общие слова.",
                "Try other or more general words.",
            ),
            "records" => ("Число записей", "Number of records"),
            "total" => ("Всего", "Total"),
            "per_year" => ("По годам", "Per year"),
            "chart_values" => ("Значения графика таблицей", "The chart's values as a table"),
            "compare_intro" => (
                "Выберите два государства или больше и, если нужно, направление: их записи рядом, с числами и временной шкалой.",
                "Choose two or more members and, if you like, a direction: their records side by side, with counts and a timeline.",
            ),
            "show" => ("Показать", "Show"),
            "any_direction" => ("любое направление", "any direction"),
            "month_axis" => ("месяц", "month"),
            "quarter_axis" => ("квартал", "quarter"),
            "month" => ("Месяц", "Month"),
            "quarter" => ("Квартал", "Quarter"),
            "count_axis" => ("записей", "records"),
            "health" => ("Состояние федерации", "Federation health"),
            "att_held" => ("есть на этом узле", "on this node"),
            "ignored_params" => (
                "Не учтены параметры с неверным значением, со вторым значением там, где оно одно, или сверх того, что берёт страница",
                "Left out: values that are not valid, a second value where a parameter takes one, or more than a page takes",
            ),
            "pages" => ("Страницы результатов", "Result pages"),
            // In the title of a page of results after the first: "… — Search, page 2".
            "page_n" => ("страница", "page"),
            "no_page" => ("Такой страницы нет", "There is no such page"),
            "unknown_members" => (
                "Нет государств с такими кодами",
                "No member state has these codes",
            ),
            "choose_two" => (
                "Для сравнения отметьте не меньше двух государств.",
                "Tick at least two member states to compare them.",
            ),
            "dates_reversed" => (
                "Начальная дата позже конечной: ни одна запись не может попасть в такой период.",
                "The start date is after the end date: no record can fall in that period.",
            ),
            "no_page_help" => (
                "Проверьте адрес или начните с поиска.",
                "Check the address, or start from the search.",
            ),
            "banner_retracted" => ("Эта запись отозвана.", "This record was retracted."),
            "delegation_problem" => (
                "Полномочия не покрывают запись",
                "Not covered by the delegation",
            ),
            "problem_signer_revoked" => {
                ("ключ подписавшего отозван", "the signer's key is revoked")
            }
            "problem_root_replaced" => (
                "делегирование подписано корневым ключом, который государство заменило",
                "the delegation was signed by a root key the member has replaced",
            ),
            "problem_outside_window" => (
                "запись создана вне срока полномочий",
                "the record was created outside the delegation's period",
            ),
            "problem_outside_scope" => (
                "вид или направление записи вне полномочий",
                "the record's kind or direction is outside the delegation's scope",
            ),
            "retracted_by_author" => (
                "опубликовавшим её ведомством",
                "by the ministry that published it",
            ),
            "retracted_by_root" => (
                "корневым ключом государства-участника",
                "by the member state's root key",
            ),
            "banner_superseded" => (
                "Эта запись заменена более новой редакцией.",
                "This record has been replaced by a newer version.",
            ),
            "banner_signer_revoked" => (
                "Ключ, которым подписана эта запись, отозван государством-участником: запись больше не считается опубликованной от его имени.",
                "The key that signed this record has been revoked by its member state: the record no longer counts as published in its name.",
            ),
            "banner_root_replaced" => (
                "Корневой ключ государства, делегировавший подписавшего, заменён поправкой к уставу: запись больше не считается опубликованной от его имени.",
                "The member's root key that delegated the signer has been replaced by a charter amendment: the record no longer counts as published in its name.",
            ),
            "revoked_from" => ("Отзыв действует с", "Revoked from"),
            "node_empty" => (
                "На этом узле пока нет записей.",
                "This node holds no records yet.",
            ),
            "node_empty_help" => (
                "Они появятся здесь, когда министерства опубликуют их или узел получит их от других узлов федерации (см. «Соединения»).",
                "They appear here when ministries publish them or this node receives them from the federation's other nodes (see Connections).",
            ),
            "sync_failed" => ("сверка не удалась", "reconciliation failed"),
            "no_peers" => (
                "Узел не соединён ни с одним узлом федерации.",
                "This node is connected to no node of the federation.",
            ),
            "no_peers_help_bootstrap" => (
                "Он соединяется с адресами network.bootstrap из node.toml. Проверьте, что эти узлы работают и доступны (межсетевой экран, порт 7400), и что у этого узла есть сертификат (node_cert), подписанный корневым ключом его государства: без него другие узлы его не допустят.",
                "It dials the network.bootstrap addresses of node.toml. Check that those nodes run and can be reached (firewall, port 7400), and that this node has a certificate (node_cert) signed by its member's root key: without it other nodes do not admit it.",
            ),
            "no_peers_help_alone" => (
                "В node.toml не указано ни одного адреса network.bootstrap: добавьте адрес узла другого государства (/ip4/…/tcp/7400/p2p/…) и перезапустите узел, или дождитесь, пока другие узлы соединятся с этим.",
                "node.toml names no network.bootstrap address: add another member's node (/ip4/…/tcp/7400/p2p/…) and restart, or wait for other nodes to dial this one.",
            ),
            "export_busy" => (
                "Узел уже готовит две выгрузки: повторите через минуту.",
                "This node is already making two exports: try again in a minute.",
            ),
            "export_failed" => (
                "Выгрузку не удалось подготовить (подробности на английском):",
                "The export could not be made:",
            ),
            "no_publishers" => (
                "Ни одно министерство пока не получило права публиковать.",
                "No ministry has been delegated to publish yet.",
            ),
            "paging_cut" => (
                "Дальше страницы не листаются: уточните поиск (например, датами).",
                "Pages go no further: narrow the search (by dates, for example).",
            ),
            "see_newer" => ("Открыть новую редакцию", "Open the newer version"),
            "effective_from" => ("действует с", "in force from"),
            "effective_until" => ("действует до", "in force until"),
            "att_fetching" => ("загружается с других узлов", "being fetched from peers"),
            "att_waiting_for_disk" => (
                "ждёт места на диске этого узла",
                "waiting for disk space on this node",
            ),
            "att_not_fetched" => ("не загружен на этот узел", "not fetched to this node"),
            "att_unsupported" => (
                "поиск не читает файлы этого вида",
                "search does not read this kind of file",
            ),
            "att_unreadable" => (
                "текст файла не прочитан: поиск не находит слова из него",
                "its text could not be read: search does not find words in it",
            ),
            "nodes_up" => ("Узлы на связи", "Nodes up"),
            "divergent" => ("расхождение", "divergent"),
            "divergent_nodes" => ("расходящихся узлов", "divergent nodes"),
            "equivocated" => ("противоречивые заявления", "equivocated"),
            "heartbeat_every" => ("сигнал каждые", "heartbeat every"),
            "seconds" => ("с", "s"),
            "health_help" => (
                "Каждый узел раз в период подписывает сигнал о своём состоянии и о наборе объектов, который он хранит (записи и объекты доверия: устав, делегирования, сертификаты узлов — поэтому их больше, чем записей в поиске); этот узел сверяет их со своим. Узел, который заявляет объекты, но не отдаёт их при сверке, отмечается как расходящийся, и подписанные доказательства можно скачать.",
                "Every node signs a heartbeat each period with its state and a checkpoint of the objects it holds (records and trust objects: the charter, delegations, node certificates, so more than the records a search counts); this node compares them with its own. A node that advertises objects but does not deliver them during reconciliation is marked divergent, and the signed evidence can be downloaded.",
            ),
            "no_nodes" => ("Нет сертифицированных узлов.", "No certified nodes."),
            "node" => ("Узел", "Node"),
            "last_seen" => ("Последний сигнал", "Last heartbeat"),
            "version" => ("Версия", "Version"),
            "checkpoint" => ("Контрольная точка", "Checkpoint"),
            "self_node" => ("этот узел", "this node"),
            "up" => ("на связи", "up"),
            "down" => ("не отвечает", "down"),
            "never_seen" => ("сигналов не было", "never seen"),
            "never_seen_more" => (
                "Ещё сертифицированных узлов без сигналов, не показанных здесь:",
                "More certified nodes never seen, not listed here:",
            ),
            "protocol" => ("протокол", "protocol"),
            "charter_mismatch" => ("другая версия устава", "charter differs"),
            "before" => ("до", "before"),
            "agrees" => ("совпадает с этим узлом", "agrees with this node"),
            "behind" => ("отстаёт", "behind"),
            "ahead" => (
                "заявляет недостающие здесь объекты",
                "claims objects this node lacks",
            ),
            "holds_refused" => (
                "совпадает, кроме объектов, отклонённых этим узлом",
                "agrees, but for objects this node refused",
            ),
            "not_compared" => ("не сверено", "not compared"),
            "evidence" => ("Доказательства", "Evidence"),
            "no_evidence" => ("Расхождений не обнаружено.", "No divergence found."),
            "refused_heartbeats" => ("Отклонённые сигналы", "Refused heartbeats"),
            _ => ("?", "?"),
        };
        match self {
            Lang::Ru => ru,
            Lang::En => en,
        }
    }

    /// A file size in this language's units (B, KB, MB with one decimal, none when it is 0).
    pub fn size(self, bytes: u64) -> String {
        let (b, k, m, g) = match self {
            Lang::Ru => ("Б", "КБ", "МБ", "ГБ"),
            Lang::En => ("B", "KB", "MB", "GB"),
        };
        let sep = match self {
            Lang::Ru => ",",
            Lang::En => ".",
        };
        if bytes < 1024 {
            format!("{bytes} {b}")
        } else if bytes < 1024 * 1024 {
            format!("{} {k}", (bytes as f64 / 1024.0).round() as u64)
        } else {
            let (tenths, unit) = if bytes < 1 << 30 {
                ((bytes as f64 / 104_857.6).round() as u64, m)
            } else {
                ((bytes as f64 / 107_374_182.4).round() as u64, g)
            };
            // A whole number without its ",0" ("512 МБ", not "512,0 МБ").
            match tenths % 10 {
                0 => format!("{} {unit}", self.number(tenths / 10)),
                t => format!("{}{sep}{t} {unit}", self.number(tenths / 10)),
            }
        }
    }

    /// A short name of a document type.
    pub fn file_type(self, media_type: &str) -> String {
        let short = match media_type {
            "application/pdf" => "PDF",
            m if m.contains("wordprocessingml") || m == "application/msword" => "Word",
            m if m.contains("spreadsheetml") || m == "application/vnd.ms-excel" => "Excel",
            m if m.contains("presentationml") => "PowerPoint",
            "application/vnd.oasis.opendocument.text" => "ODT",
            "application/vnd.oasis.opendocument.spreadsheet" => "ODS",
            "application/vnd.oasis.opendocument.presentation" => "ODP",
            "text/plain" => "TXT",
            "text/markdown" => "Markdown",
            "text/csv" => "CSV",
            other => other,
        };
        short.to_string()
    }

    /// A record status in this language.
    pub fn status(self, s: &str) -> String {
        let (ru, en) = match s {
            "active" => ("действует", "active"),
            "superseded" => ("заменена", "superseded"),
            "retracted" => ("отозвана", "retracted"),
            "pending" => ("ожидает", "pending"),
            "revoked" => ("отозвано", "revoked"),
            "expired" => ("истекло", "expired"),
            "not_yet_valid" | "not-yet-valid" => ("ещё не действует", "not yet valid"),
            "signer-revoked" => (
                "полномочия подписавшего отозваны",
                "signer's authority revoked",
            ),
            "root-replaced" => ("корневой ключ заменён", "root key replaced"),
            other => (other, other),
        };
        match self {
            Lang::Ru => ru.to_string(),
            Lang::En => en.to_string(),
        }
    }

    /// A language's name in this language (BCP 47 primary tag).
    pub fn language(self, code: &str) -> String {
        let (ru, en) = match code.split('-').next().unwrap_or(code) {
            "ru" => ("русский", "Russian"),
            "en" => ("английский", "English"),
            "kk" => ("казахский", "Kazakh"),
            "ky" => ("киргизский", "Kyrgyz"),
            "be" => ("белорусский", "Belarusian"),
            "hy" => ("армянский", "Armenian"),
            "uz" => ("узбекский", "Uzbek"),
            "az" => ("азербайджанский", "Azerbaijani"),
            "tg" => ("таджикский", "Tajik"),
            "tk" => ("туркменский", "Turkmen"),
            "ro" => ("румынский", "Romanian"),
            "ka" => ("грузинский", "Georgian"),
            "uk" => ("украинский", "Ukrainian"),
            _ => return code.to_string(),
        };
        match self {
            Lang::Ru => ru.to_string(),
            Lang::En => en.to_string(),
        }
    }

    /// The banner of a node whose disk is below its free-space floor (MiB).
    pub fn disk_low(self, free_mib: u64, min_mib: u64) -> String {
        let (free, min) = (self.number(free_mib), self.number(min_mib));
        match self {
            Lang::Ru => format!(
                "Этот узел не принимает новых записей: на его диске свободно {free} МиБ, меньше порога в {min} МиБ (store.min_free_mb). Всё, что он хранит, доступно; новые записи придут, когда место освободят."
            ),
            Lang::En => format!(
                "This node takes no new records: its disk has {free} MiB free, below the floor of {min} MiB (store.min_free_mb). Everything it holds is available; new records arrive once space is freed."
            ),
        }
    }

    /// A whole number with this language's digit grouping (12 345 / 12,345).
    /// `text` in this language's quotation marks, quotes inside it turned into the inner
    /// kind: «… „…“ …» in Russian, “… ‘…’ …” in English.
    pub fn quote(self, text: &str) -> String {
        let (outer, inner) = match self {
            Lang::Ru => (('«', '»'), ('„', '“')),
            Lang::En => (('“', '”'), ('‘', '’')),
        };
        let mut out = String::with_capacity(text.len() + 8);
        out.push(outer.0);
        // Whether an inner quotation is open: “ opens one in English and closes „ in Russian.
        let mut open = false;
        for c in text.chars() {
            let opens = match c {
                '«' | '„' => true,
                '»' | '”' => false,
                '“' | '"' => !open,
                c => {
                    out.push(c);
                    continue;
                }
            };
            open = opens;
            out.push(if opens { inner.0 } else { inner.1 });
        }
        out.push(outer.1);
        out
    }

    pub fn number(self, n: u64) -> String {
        let digits = n.to_string();
        let sep = match self {
            Lang::Ru => '\u{a0}',
            Lang::En => ',',
        };
        let mut out = String::new();
        for (i, c) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i).is_multiple_of(3) {
                out.push(sep);
            }
            out.push(c);
        }
        out
    }

    /// `n` and the word for it in the right form: Russian `[one, few, many]` (1, 2–4, 5–20
    /// and the like: 21 объект, 22 объекта, 25 объектов), English `[one, other]`.
    pub fn count(self, n: u64, ru: [&str; 3], en: [&str; 2]) -> String {
        let word = match self {
            Lang::Ru => ru[ru_plural(n)],
            Lang::En => en[usize::from(n != 1)],
        };
        format!("{} {word}", self.number(n))
    }

    /// How long ago, in the largest whole unit: "42 с назад", "3 мин назад", "5 ч назад",
    /// "3 дня назад" ("42 s ago", "3 min ago", "5 h ago", "3 days ago").
    pub fn ago(self, secs: u64) -> String {
        let (n, ru, en): (u64, [&str; 3], [&str; 2]) = match secs {
            s if s < 60 => (s, ["с", "с", "с"], ["s", "s"]),
            s if s < 3_600 => (s / 60, ["мин", "мин", "мин"], ["min", "min"]),
            s if s < 86_400 => (s / 3_600, ["ч", "ч", "ч"], ["h", "h"]),
            s => (s / 86_400, ["день", "дня", "дней"], ["day", "days"]),
        };
        match self {
            Lang::Ru => format!("{} назад", self.count(n, ru, en)),
            Lang::En => format!("{} ago", self.count(n, ru, en)),
        }
    }

    /// "(each file holds the first 10,000 records)" beside the export links of a larger result.
    pub fn export_cap(self, n: usize) -> String {
        match self {
            Lang::Ru => format!("(в файл попадут первые {} записей)", self.number(n as u64)),
            Lang::En => format!("(a file holds the first {} records)", self.number(n as u64)),
        }
    }

    /// What an evidence bundle shows, in this language, from its figures (the bundle's own
    /// explanation is signed English text, kept for the file and the API).
    pub fn evidence_text(self, e: &accord_node::EvidenceSummary) -> String {
        if e.kind == "equivocation" {
            return match self {
                Lang::Ru => {
                    "подписал два разных сообщения о состоянии с одним и тем же временем".into()
                }
                Lang::En => "signed two different heartbeats for the same time".into(),
            };
        }
        let (Some(claimed), Some(watermark), Some(held)) = (e.claimed, e.watermark, e.held) else {
            return e.explanation.clone();
        };
        let objects =
            |n: u64| self.count(n, ["объект", "объекта", "объектов"], ["object", "objects"]);
        let after = e.reconciled_at.map(|t| self.time(t, false));
        match self {
            Lang::Ru => format!(
                "заявлено объектов, созданных до {}: {}; у этого узла: {}{}",
                self.time(watermark, false),
                self.number(claimed),
                self.number(held),
                after
                    .map(|t| format!(" (после сверки с ним {t})"))
                    .unwrap_or_default()
            ),
            Lang::En => format!(
                "claims {} created before {}; this node holds {}{}",
                objects(claimed),
                self.time(watermark, false),
                self.number(held),
                after
                    .map(|t| format!(" after reconciling with it at {t}"))
                    .unwrap_or_default()
            ),
        }
    }

    /// Why heartbeats were refused, by their reason code, in this language.
    pub fn heartbeat_refusal(self, code: &str) -> String {
        let (ru, en) = match code {
            "not-certified" => ("ключ узла не сертифицирован", "node key not certified"),
            "wrong-member" => (
                "ключ сертифицирован другим государством",
                "key certified by another member",
            ),
            "bad-signature" => ("неверная подпись", "bad signature"),
            "malformed" | "too-large" => ("повреждённое сообщение", "malformed message"),
            "wrong-federation" => ("другая федерация", "another federation"),
            "bad-watermark" => ("невозможная отметка сверки", "impossible watermark"),
            "from-the-future" => ("время в будущем", "time in the future"),
            "stale" => ("устарело", "stale"),
            "busy" => ("не проверено: узел занят", "not judged: node busy"),
            other => (other, other),
        };
        match self {
            Lang::Ru => ru.to_string(),
            Lang::En => en.to_string(),
        }
    }

    /// "All 25 records" under a column that shows the newest few.
    pub fn all_records(self, n: u64) -> String {
        match self {
            Lang::Ru => format!(
                "Все {}",
                self.count(n, ["запись", "записи", "записей"], ["", ""])
            ),
            Lang::En => format!("All {}", self.count(n, ["", "", ""], ["record", "records"])),
        }
    }

    /// "and 3 more" after a list of parameters left out.
    pub fn more_params(self, n: usize) -> String {
        match self {
            Lang::Ru => format!("и ещё {}", self.number(n as u64)),
            Lang::En => format!("and {} more", self.number(n as u64)),
        }
    }

    /// A query longer than the search takes, cut.
    pub fn query_cut(self, max: usize) -> String {
        match self {
            Lang::Ru => format!(
                "Запрос длиннее {} символов: искали по его началу, до последнего целого слова.",
                self.number(max as u64)
            ),
            Lang::En => format!(
                "The query is longer than {} characters: its beginning was searched, up to the last whole word.",
                self.number(max as u64)
            ),
        }
    }

    /// "+ 8 more directions" on a result that names more than it shows.
    pub fn more_directions(self, n: usize) -> String {
        let n = self.count(
            n as u64,
            ["направление", "направления", "направлений"],
            ["more direction", "more directions"],
        );
        match self {
            Lang::Ru => format!("ещё {n}"),
            Lang::En => format!("+ {n}"),
        }
    }

    /// [`Lang::period`] short enough for a chart's axis: «дек 2026», "Dec 2026", «IV кв. 2026».
    pub fn period_short(self, p: &str) -> String {
        const RU: [&str; 12] = [
            "янв", "фев", "мар", "апр", "май", "июн", "июл", "авг", "сен", "окт", "ноя", "дек",
        ];
        match (
            self,
            p.get(..4),
            p.get(5..7).and_then(|m| m.parse::<usize>().ok()),
        ) {
            (Lang::Ru, Some(y), Some(m)) if (1..=12).contains(&m) && p.len() == 7 => {
                format!("{} {y}", RU[m - 1])
            }
            _ => self.period(p),
        }
    }

    /// A month ("2026-12") as this language names it: «декабрь 2026», "Dec 2026"; a quarter
    /// ("2026-Q4") as «IV кв. 2026», "Q4 2026"; anything else as it is.
    pub fn period(self, p: &str) -> String {
        const RU: [&str; 12] = [
            "январь",
            "февраль",
            "март",
            "апрель",
            "май",
            "июнь",
            "июль",
            "август",
            "сентябрь",
            "октябрь",
            "ноябрь",
            "декабрь",
        ];
        const EN: [&str; 12] = [
            "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
        ];
        let (Some(y), Some(rest)) = (p.get(..4), p.get(5..)) else {
            return p.to_string();
        };
        if let Some(q) = rest.strip_prefix('Q') {
            return match self {
                Lang::Ru => {
                    let roman = ["I", "II", "III", "IV"];
                    match q
                        .parse::<usize>()
                        .ok()
                        .and_then(|q| roman.get(q.wrapping_sub(1)))
                    {
                        Some(r) => format!("{r} кв. {y}"),
                        None => p.to_string(),
                    }
                }
                Lang::En => format!("Q{q} {y}"),
            };
        }
        match rest.parse::<usize>().ok().filter(|m| (1..=12).contains(m)) {
            Some(m) => match self {
                Lang::Ru => format!("{} {y}", RU[m - 1]),
                Lang::En => format!("{} {y}", EN[m - 1]),
            },
            None => p.to_string(),
        }
    }

    /// A date and time (UTC, to the minute or the second), saying it is UTC.
    pub fn time(self, t: accord_core::Timestamp, seconds: bool) -> String {
        let full = t.to_string();
        let hm = full.get(11..if seconds { 19 } else { 16 }).unwrap_or("");
        format!("{} {hm} UTC", self.date(t))
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

/// Which Russian form a number takes: 0 for 1, 21, 101…; 1 for 2–4, 22–24…; 2 for the rest
/// (0, 5–20, 25–30, 111…).
pub(crate) fn ru_plural(n: u64) -> usize {
    match (n % 10, n % 100) {
        (1, m) if m != 11 => 0,
        (2..=4, m) if !(12..=14).contains(&m) => 1,
        _ => 2,
    }
}

/// A stable hue for a member code, the same in every federation: the colour of its badge and of
/// its series in charts.
pub(crate) fn member_hue(code: &str) -> u32 {
    // FNV-1a, then spread over the colour wheel.
    let h = code.bytes().fold(0x811c_9dc5u32, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    });
    (h % 360 + (h >> 16) % 7 * 51) % 360
}

/// What every page needs: the interface language, the charter's names, this node.
pub(crate) struct Ctx {
    pub lang: Lang,
    set_lang: bool,
    /// Taxonomy codes → names in the interface language.
    pub names: BTreeMap<String, String>,
    /// Member codes → names in the interface language.
    pub members: BTreeMap<String, String>,
    fed_name: String,
    this_member: String,
    charter_version: u64,
    /// Free space and floor (MiB) while the node's disk is below its floor.
    disk_low: Option<(u64, u64)>,
}

impl Ctx {
    pub(crate) async fn new(
        node: &NodeHandle,
        params: &[(String, String)],
        headers: &HeaderMap,
    ) -> Ctx {
        let (lang, set_lang) = Lang::detect(params, headers);
        let f = crate::records::federation_value(node)
            .await
            .unwrap_or_default();
        // Names as the charter signs them, shown without what would reorder the text around
        // them (a member's name ending in a right-to-left override).
        let pick = |v: &serde_json::Value, fallback: &str| {
            accord_search::display_line(
                v[lang.code()]
                    .as_str()
                    .or_else(|| v["en"].as_str())
                    .unwrap_or(fallback),
            )
        };
        let mut names = BTreeMap::new();
        for list in ["directions", "kinds"] {
            for e in f["taxonomy"][list].as_array().into_iter().flatten() {
                let code = e["code"].as_str().unwrap_or("");
                names.insert(code.to_string(), pick(&e["names"], code));
            }
        }
        let members = f["members"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|m| {
                let code = m["code"].as_str().unwrap_or("");
                (code.to_string(), pick(&m["name"], code))
            })
            .collect();
        let status = node.status().await.ok();
        Ctx {
            lang,
            set_lang,
            names,
            members,
            fed_name: accord_search::display_line(f["name"].as_str().unwrap_or("Accord")),
            this_member: status
                .as_ref()
                .map(|s| s.member.clone())
                .unwrap_or_default(),
            charter_version: status.as_ref().map(|s| s.charter_version).unwrap_or(0),
            disk_low: status.as_ref().and_then(|s| {
                let d = s.disk;
                d.low
                    .then(|| (d.free_bytes.unwrap_or(0) >> 20, d.min_free_bytes >> 20))
            }),
        }
    }

    /// A context with the given names, for tests of what pages and files say.
    #[cfg(test)]
    pub(crate) fn for_test(lang: Lang, names: &[(&str, &str)], members: &[(&str, &str)]) -> Ctx {
        let map = |pairs: &[(&str, &str)]| {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        Ctx {
            lang,
            set_lang: false,
            names: map(names),
            members: map(members),
            fed_name: String::new(),
            this_member: String::new(),
            charter_version: 1,
            disk_low: None,
        }
    }

    /// A member's name in the interface language, with its code: "Республика Казахстан (KZ)".
    pub(crate) fn member_text(&self, code: &str) -> String {
        match self.members.get(code) {
            Some(name) if name != code => format!("{name} ({code})"),
            _ => code.to_string(),
        }
    }

    /// A language's name in the interface language, with its tag when the tag says more than
    /// the language ("узбекский, uz-Latn" and "узбекский, uz-Cyrl" stay two).
    pub(crate) fn language_text(&self, tag: &str) -> String {
        let name = self.lang.language(tag);
        if tag.contains('-') && name != tag {
            format!("{name}, {tag}")
        } else {
            name
        }
    }

    /// A taxonomy code's name in the interface language.
    pub(crate) fn name<'a>(&'a self, code: &'a str) -> &'a str {
        self.names.get(code).map(String::as_str).unwrap_or(code)
    }

    /// A member as a badge: its name in the interface language and its code, in the member's
    /// own colour (the same in every federation), no emoji.
    pub(crate) fn member(&self, code: &str) -> Markup {
        // A code no member has (a link with a mistyped code) is shown once, not as its own name.
        let name = self.members.get(code).map(String::as_str);
        html! {
            span.member style=(format!("--h:{}", member_hue(code))) title=(name.unwrap_or(code)) {
                abbr.code { (code) }
                @if let Some(name) = name { " " span.mname { (name) } }
            }
        }
    }

    /// A whole page: header with the federation's name, navigation and language switch; the
    /// content; a footer naming this node's member, the software and the charter version.
    pub(crate) fn page(
        &self,
        title: &str,
        current: &str,
        path_and_query: &str,
        body: Markup,
    ) -> Response {
        let lang = self.lang;
        // A sentence used as a title ("Record not found on this node.") loses its full stop.
        let title = title.strip_suffix('.').unwrap_or(title);
        let switch = |l: Lang| {
            // "/?" (a page with an empty query) takes "lang=…" after its "?", not "?&lang=…".
            let sep = if path_and_query.ends_with('?') {
                ""
            } else if path_and_query.contains('?') {
                "&"
            } else {
                "?"
            };
            format!("{path_and_query}{sep}lang={}", l.code())
        };
        let markup = html! {
            (DOCTYPE)
            html lang=(lang.code()) {
                head {
                    meta charset="utf-8";
                    meta name="viewport" content="width=device-width, initial-scale=1";
                    title { (title) " · " (self.fed_name) }
                    link rel="icon" href="/favicon.svg" type="image/svg+xml";
                    link rel="stylesheet" href="/static/style.css";
                }
                body {
                    a.skip href="#main" { (lang.t("skip_content")) }
                    header.top {
                        div.brandline {
                            a.brand href="/" { (PreEscaped(FAVICON)) span { "Accord" } }
                            span.fed { (self.fed_name) }
                        }
                        nav aria-label=(lang.t("menu")) {
                            // What analysts read, then this node's connections and the federation's
                            // nodes; the charter page is named by what it shows.
                            @for (href, key, label) in [("/", "search", "search"), ("/overview", "overview", "overview"), ("/compare", "compare", "compare"), ("/federation", "federation", "charter")] {
                                a href=(href) aria-current=[(current == key).then_some("page")] { (lang.t(label)) }
                            }
                            span.navsep aria-hidden="true" {}
                            @for (href, key) in [("/network", "network"), ("/health", "health")] {
                                a href=(href) aria-current=[(current == key).then_some("page")] { (lang.t(key)) }
                            }
                        }
                        span.langs {
                            a href=(switch(Lang::Ru)) lang="ru" hreflang="ru" aria-current=[(lang == Lang::Ru).then_some("true")] { "Русский" }
                            " · "
                            a href=(switch(Lang::En)) lang="en" hreflang="en" aria-current=[(lang == Lang::En).then_some("true")] { "English" }
                        }
                    }
                    main #main {
                        @if let Some((free, min)) = self.disk_low {
                            p.notice.error role="alert" { (lang.disk_low(free, min)) }
                        }
                        (body)
                    }
                    footer.site {
                        span { (lang.t("this_node")) ": " (self.member(&self.this_member)) }
                        span { "Accord " (env!("CARGO_PKG_VERSION")) }
                        span { (lang.t("charter")) " v" (self.charter_version) }
                        a href="/v1/openapi.json" { "API" }
                    }
                    script src="/static/app.js" defer {}
                }
            }
        };
        let mut r = (
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            markup.into_string(),
        )
            .into_response();
        if self.set_lang
            && let Ok(v) = format!(
                "accord_lang={}; Path=/; Max-Age=31536000; SameSite=Lax",
                lang.code()
            )
            .parse()
        {
            r.headers_mut().insert(header::SET_COOKIE, v);
        }
        r
    }
}

/// The node's icon: two linked nodes in the accent colour (inline SVG, also `/favicon.svg`).
pub(crate) const FAVICON: &str = r##"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 32 32" width="24" height="24" aria-hidden="true"><rect width="32" height="32" rx="7" fill="#0b4fa8"/><circle cx="10" cy="16" r="5" fill="#fff"/><circle cx="22" cy="16" r="5" fill="none" stroke="#fff" stroke-width="3"/></svg>"##;

/// The host a link goes to, as a reader should judge it, parsed as a browser parses the link
/// (`https://egov.kz@evil.example/` and `https://evil.example\@egov.kz/` go to
/// *evil.example*; a name in another alphabet, or with a letter of one that looks Latin, shows
/// as its punycode `xn--…`), without port or path; the link itself when it does not parse.
pub(crate) fn link_host(link: &str) -> String {
    let host = url::Url::parse(link.trim())
        .ok()
        .and_then(|u| u.host_str().map(str::to_string))
        .unwrap_or_else(|| link.to_string());
    accord_search::display_line(&host)
}

/// How deeply quotes, lists and emphasis nest on a record's page; deeper ones show their text
/// without their tags.
const MARKDOWN_DEPTH: usize = 16;

/// A link of a record's body (or an image, which becomes one) while its text is rendered.
struct OpenLink {
    /// The host said after it (`None`: not said).
    host: Option<String>,
    /// What it is called when its text is empty: see [`link_name`].
    fallback: String,
    /// Whether its text so far holds something to read.
    named: bool,
    /// Whether it is rendered as a link: one that goes nowhere safe is its text alone.
    linked: bool,
}

/// What a link without text of its own is called, so that a screen reader has a name to
/// announce: the file its address ends in (`report.pdf`), else its host as a reader should
/// judge it ([`link_host`]); an e-mail link's address.
fn link_name(url: &str) -> String {
    let url = url.trim();
    let name = match url::Url::parse(url) {
        Ok(u) if u.scheme() == "mailto" => percent_decoded(u.path()),
        Ok(u) => u
            .path_segments()
            .and_then(|mut s| s.next_back())
            .map(percent_decoded)
            .unwrap_or_default(),
        // An e-mail autolink's address, written without its `mailto:`.
        Err(_) => url.to_string(),
    };
    let name = accord_search::display_line(&name);
    if name.is_empty() {
        link_host(url)
    } else {
        name
    }
}

/// `s` with its `%XX` escapes read as the bytes they stand for (a file name as its reader
/// wrote it: `отчёт 2025.pdf`, not `%D0%BE%D1%82…`); bytes that make no UTF-8 are shown as �.
fn percent_decoded(s: &str) -> String {
    let mut out = Vec::with_capacity(s.len());
    let mut rest = s.as_bytes();
    while let Some((&b, tail)) = rest.split_first() {
        let escaped = tail
            .get(..2)
            .filter(|h| b == b'%' && h.iter().all(u8::is_ascii_hexdigit))
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match escaped {
            Some(x) => {
                out.push(x);
                rest = tail.get(2..).unwrap_or_default();
            }
            None => {
                out.push(b);
                rest = tail;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Renders record Markdown safely: raw HTML is shown as text, links other than http(s) and
/// mailto are their text alone, images become plain links (nothing is loaded from elsewhere),
/// a link without text is named by its file or host, an http(s) link is followed by the host
/// it goes to, in brackets (its text may read as another address), and headings start at
/// `<h2>`, under the page's title.
pub(crate) fn markdown(src: &str) -> Markup {
    use pulldown_cmark::{Event, HeadingLevel, LinkType, Options, Parser, Tag, TagEnd};
    let safe = |url: &str| {
        let u = url.trim().to_ascii_lowercase();
        u.starts_with("http://") || u.starts_with("https://") || u.starts_with("mailto:")
    };
    // The links open, innermost last.
    let mut links: Vec<OpenLink> = Vec::new();
    // Containers nested deeper than `MARKDOWN_DEPTH` lose their tags, not their text: a body of
    // a mebibyte of `>` made 28 MB of nested quotes for a reader's browser.
    let mut nested: Vec<bool> = Vec::new();
    let mut depth = 0usize;
    let events = Parser::new_ext(src, Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH)
        .filter(move |ev| {
            let container = |t: &Tag| {
                matches!(
                    t,
                    Tag::BlockQuote(_)
                        | Tag::List(_)
                        | Tag::Item
                        | Tag::Emphasis
                        | Tag::Strong
                        | Tag::Strikethrough
                )
            };
            match ev {
                Event::Start(t) if container(t) => {
                    // An item keeps its tags when its list does.
                    let keep = if matches!(t, Tag::Item) {
                        nested.last().copied().unwrap_or(true)
                    } else {
                        depth < MARKDOWN_DEPTH
                    };
                    nested.push(keep);
                    depth += usize::from(keep);
                    keep
                }
                Event::End(
                    TagEnd::BlockQuote(_)
                    | TagEnd::List(_)
                    | TagEnd::Item
                    | TagEnd::Emphasis
                    | TagEnd::Strong
                    | TagEnd::Strikethrough,
                ) => {
                    let keep = nested.pop().unwrap_or(true);
                    depth -= usize::from(keep);
                    keep
                }
                _ => true,
            }
        })
        .flat_map(move |ev| {
            // The host an http(s) link goes to, said after it (not for an address written as
            // its own text, `<https://…>`).
            // An address written as its own text is said too unless its host reads as what it
            // is: not with a user part (`<https://egov.kz@evil.example/>`), a backslash, or a
            // letter of another alphabet (whose punycode differs from what is written).
            let host_of = |link_type: &pulldown_cmark::LinkType, url: &str| {
                let web = url.trim().to_ascii_lowercase();
                let written = web
                    .split_once("://")
                    .map_or("", |(_, rest)| rest)
                    .split(['/', '?', '#', '\\', ':'])
                    .next()
                    .unwrap_or("");
                let own_text = matches!(link_type, pulldown_cmark::LinkType::Autolink)
                    && url::Url::parse(url.trim())
                        .is_ok_and(|u| u.host_str().is_some_and(|h| h == written));
                (!own_text && (web.starts_with("http://") || web.starts_with("https://")))
                    .then(|| link_host(url))
            };
            // Text that gives the innermost open link something to be announced by.
            let names = |links: &mut Vec<OpenLink>, t: &str| {
                if let Some(l) = links.last_mut() {
                    l.named |= t.chars().any(|c| !c.is_whitespace());
                }
            };
            // A record's `#` heading sits under the page's own `<h1>` (the record's title):
            // every level goes one down, `######` staying the last there is.
            let below = |level: HeadingLevel| match level {
                HeadingLevel::H1 => HeadingLevel::H2,
                HeadingLevel::H2 => HeadingLevel::H3,
                HeadingLevel::H3 => HeadingLevel::H4,
                HeadingLevel::H4 => HeadingLevel::H5,
                HeadingLevel::H5 | HeadingLevel::H6 => HeadingLevel::H6,
            };
            // Up to three events for one: a name for a link without text, the event itself
            // (none for the tags of a link that goes nowhere), the host after a link.
            let mut name = None;
            let mut after = None;
            let ev = match ev {
                // Raw HTML is text; no text keeps a character that reorders what follows it.
                Event::Html(h) | Event::InlineHtml(h) => {
                    let t = accord_search::display_text(&h);
                    names(&mut links, t.as_str());
                    Some(Event::Text(t.into()))
                }
                Event::Text(t) => {
                    let t = accord_search::display_text(&t);
                    names(&mut links, t.as_str());
                    Some(Event::Text(t.into()))
                }
                Event::Code(t) => {
                    let t = accord_search::display_text(&t);
                    names(&mut links, t.as_str());
                    Some(Event::Code(t.into()))
                }
                Event::Start(Tag::Heading {
                    level,
                    id,
                    classes,
                    attrs,
                }) => Some(Event::Start(Tag::Heading {
                    level: below(level),
                    id,
                    classes,
                    attrs,
                })),
                Event::End(TagEnd::Heading(level)) => {
                    Some(Event::End(TagEnd::Heading(below(level))))
                }
                // An image is a link to it: nothing is loaded from elsewhere.
                Event::Start(
                    Tag::Link {
                        link_type,
                        dest_url,
                        title,
                        id,
                    }
                    | Tag::Image {
                        link_type,
                        dest_url,
                        title,
                        id,
                    },
                ) => {
                    // An address in angle brackets (`<someone@example.org>`) is an e-mail
                    // link, whose target the renderer writes as `mailto:` itself.
                    if matches!(link_type, LinkType::Email) || safe(&dest_url) {
                        links.push(OpenLink {
                            // Judged as written (a look-alike letter is no host as written)...
                            host: host_of(&link_type, &dest_url),
                            fallback: link_name(&dest_url),
                            named: false,
                            linked: true,
                        });
                        // ...and linked as a browser reads it, written out so: the page links
                        // where its host note says (the renderer would otherwise write a
                        // backslash as %5C, which a browser reads otherwise than it).
                        let dest_url = match url::Url::parse(dest_url.trim()) {
                            Ok(u) if matches!(u.scheme(), "http" | "https") => {
                                pulldown_cmark::CowStr::from(u.as_str().to_string())
                            }
                            _ => dest_url,
                        };
                        Some(Event::Start(Tag::Link {
                            link_type,
                            dest_url,
                            title,
                            id,
                        }))
                    } else {
                        // A link that may go nowhere safe (`javascript:`, a path of another
                        // site) is its text alone: a link to "#" read as a link and did nothing.
                        links.push(OpenLink {
                            host: None,
                            fallback: String::new(),
                            named: false,
                            linked: false,
                        });
                        None
                    }
                }
                // Every image started a link (an image inside an image's text too).
                Event::End(TagEnd::Image | TagEnd::Link) => match links.pop() {
                    Some(l) => {
                        // A link with no text to read (`[](…)`, an image without a description)
                        // is named by the file it goes to, or its host: a screen reader otherwise
                        // announces a link and no name.
                        let unnamed = l.linked && !l.named && !l.fallback.is_empty();
                        if unnamed {
                            name = Some(Event::Text(l.fallback.clone().into()));
                        }
                        if let Some(outer) = links.last_mut() {
                            outer.named |= l.named || unnamed;
                        }
                        // The host note says nothing more after a link named by that host.
                        after = l.host.filter(|h| !(unnamed && *h == l.fallback));
                        l.linked.then_some(Event::End(TagEnd::Link))
                    }
                    // Never: every end has its start.
                    None => None,
                },
                other => Some(other),
            };
            name.into_iter()
                .chain(ev)
                .chain(after.map(|h| Event::Text(format!(" ({h})").into())))
        });
    let mut out = String::new();
    pulldown_cmark::html::push_html(&mut out, events);
    // A table scrolls sideways in its own box on a narrow screen (reachable by keyboard),
    // instead of widening the page. The record's own HTML is text by now, so every `<table>`
    // here is one the renderer made.
    let out = out
        .replace("<table>", "<div class=\"scroll\" tabindex=\"0\"><table>")
        .replace("</table>", "</table></div>");
    PreEscaped(out)
}

/// The visual system: colour tokens (every text/background pair meets WCAG AA, 4.5:1), a type
/// scale, spacing steps; phones first (the folded filters above the results, nothing wider
/// than 360 px: tables and charts scroll in their own box), a print stylesheet.
const STYLE: &str = r#"
:root {
  --fg:#1b1f24; --muted:#4a535c; --bg:#fff; --soft:#f4f6f8; --line:#c9d1d9;
  --accent:#0b4fa8; --accent-fg:#fff; --accent-soft:#e8f0fb; --mark:#fff1a8;
  --ok:#116329; --bad:#a40e26; --focus:#b35c00;
  --s1:4px; --s2:8px; --s3:12px; --s4:16px; --s5:24px; --s6:32px;
  --radius:6px; --font: system-ui, -apple-system, "Segoe UI", Roboto, "Noto Sans", "PT Sans", sans-serif;
}
* { box-sizing:border-box; }
html { -webkit-text-size-adjust:100%; }
body { margin:0; font:16px/1.55 var(--font); color:var(--fg); background:var(--bg); overflow-wrap:break-word; }
h1 { font-size:1.5rem; line-height:1.25; margin:var(--s4) 0 var(--s3); }
h2 { font-size:1.2rem; margin:var(--s5) 0 var(--s2); } h3 { font-size:1.05rem; margin:var(--s4) 0 var(--s2); }
a { color:var(--accent); text-underline-offset:2px; }
:focus-visible { outline:3px solid var(--focus); outline-offset:2px; }
.visually-hidden { position:absolute; width:1px; height:1px; overflow:hidden; clip:rect(0 0 0 0); white-space:nowrap; }
/* What a script hides stays hidden whatever display its class gives it. */
[hidden] { display:none !important; }
::placeholder { color:var(--muted); opacity:1; }
.skip { position:absolute; left:-9999px; } .skip:focus { left:var(--s2); top:var(--s2); z-index:10; background:var(--bg); padding:var(--s2); border:2px solid var(--accent); }
header.top { display:flex; flex-wrap:wrap; gap:var(--s2) var(--s4); align-items:center; padding:var(--s2) var(--s4); border-bottom:1px solid var(--line); background:var(--soft); }
.brandline { display:flex; flex-wrap:wrap; align-items:center; gap:var(--s2); min-width:0; }
.brand { display:inline-flex; align-items:center; gap:var(--s2); font-weight:700; font-size:1.15rem; text-decoration:none; color:var(--fg); }
.fed { color:var(--muted); font-size:.9rem; }
header nav { display:flex; flex-wrap:wrap; gap:var(--s1) var(--s3); }
header nav a { text-decoration:none; padding:var(--s1) 0; }
header nav .navsep { border-left:1px solid var(--line); margin:var(--s1) 0; } header nav a[aria-current=page] { font-weight:700; text-decoration:underline; }
.langs { margin-left:auto; font-size:.9rem; } .langs a[aria-current=true] { font-weight:700; color:var(--fg); }
main { max-width:1200px; margin:0 auto; padding:var(--s4); min-height:60vh; }
footer.site { display:flex; flex-wrap:wrap; gap:var(--s2) var(--s5); padding:var(--s3) var(--s4); border-top:1px solid var(--line); background:var(--soft); color:var(--muted); font-size:.9rem; }
.searchbar { display:flex; gap:var(--s2); } .searchbar input[type=search] { flex:1; min-width:0; padding:10px; font-size:1.05rem; border:1px solid var(--muted); border-radius:var(--radius); }
button, select, input[type=date] { font:inherit; }
button { padding:8px 14px; border:1px solid var(--accent); background:var(--accent); color:var(--accent-fg); border-radius:var(--radius); cursor:pointer; }
button.linkish { background:none; border:none; color:var(--accent); padding:0; text-decoration:underline; }
select, input[type=date] { padding:6px; border:1px solid var(--muted); border-radius:var(--radius); background:var(--bg); color:var(--fg); max-width:100%; }
.layout { display:grid; grid-template-columns:1fr; gap:var(--s4); margin-top:var(--s3); }
.results { min-width:0; } .filterbox { min-width:0; }
.filterbox > summary { cursor:pointer; font-weight:600; padding:var(--s2) var(--s3); border:1px solid var(--line); border-radius:var(--radius); background:var(--soft); }
@media (min-width: 880px) {
  .layout { grid-template-columns:280px 1fr; }
  .filterbox { grid-column:1; grid-row:1; } .results { grid-column:2; grid-row:1; }
}
fieldset { border:1px solid var(--line); border-radius:var(--radius); margin:var(--s3) 0; padding:var(--s2) var(--s3); min-width:0; }
legend { font-weight:600; padding:0 var(--s1); } fieldset label { display:block; font-size:.95rem; padding:2px 0; }
fieldset label.inline { display:inline-block; margin-right:var(--s3); }
.actions { display:flex; gap:var(--s3); align-items:center; position:sticky; bottom:0; background:var(--bg); padding:var(--s2) 0; }
.count { color:var(--muted); font-size:.85rem; }
.resultbar { display:flex; flex-wrap:wrap; justify-content:space-between; align-items:center; gap:var(--s2); }
.count-line { font-size:1rem; font-weight:400; margin:var(--s2) 0; }
.result { border-bottom:1px solid var(--line); padding:var(--s3) 0; } .result h2 { font-size:1.1rem; margin:0 0 var(--s1); }
.meta { color:var(--muted); font-size:.9rem; }
/* Badges are apart by the space between them in the HTML (read and copied as words apart),
   not by a margin too. A badge that is a link, or opens, is underlined as links are: its
   colour alone did not tell it from a plain one. */
.badge { display:inline-block; border:1px solid var(--line); border-radius:10px; padding:0 7px; font-size:.82rem; margin:0 0 2px; background:var(--soft); color:var(--fg); text-decoration:none; }
a.badge { color:var(--accent); text-decoration:underline; }
details.more { display:inline; }
details.more > summary { display:inline-block; cursor:pointer; list-style:none; color:var(--accent); text-decoration:underline; }
details.more > summary::-webkit-details-marker { display:none; }
.member { display:inline-flex; align-items:baseline; gap:4px; border:1px solid hsl(var(--h) 45% 40%); background:hsl(var(--h) 70% 94%); color:var(--fg); border-radius:10px; padding:0 7px; font-size:.82rem; margin:0 0 2px; white-space:nowrap; }
.member abbr { font-weight:700; text-decoration:none; letter-spacing:.02em; }
/* Signed text keeps its direction inside its own box: an Arabic-script name or a stray mark
   cannot reorder the badges and dates beside it. */
.member, .badge, .snippet, .body p, .mname { unicode-bidi:isolate; }
.snippet { margin:var(--s1) 0 0; } .snippet b { background:var(--mark); font-weight:600; }
.didyoumean { font-size:1.05rem; }
.chips { display:flex; flex-wrap:wrap; gap:6px; list-style:none; padding:0; margin:var(--s2) 0; align-items:center; }
.chip { display:inline-block; min-height:32px; line-height:30px; padding:0 10px; border:1px solid var(--line); border-radius:16px; background:var(--soft); color:var(--fg); text-decoration:none; }
.chip:hover, .chip:focus { border-color:var(--accent, #0b4fa8); }
.empty { border:1px dashed var(--line); border-radius:var(--radius); padding:var(--s4); background:var(--soft); }
/* The live notice (#live) is on the page from the start, its status line empty and without
   a box (a region that appears with its text is not announced); the script gives it the
   notice's box once it says something. */
.notice { display:block; background:var(--accent-soft); border:1px solid var(--accent); padding:var(--s2); border-radius:var(--radius); margin:var(--s2) 0; }
.state { font-weight:600; } .state.ok { color:var(--ok); } .state.bad { color:var(--bad); } .state.muted { color:var(--muted); font-weight:400; }
.notice.error { display:block; border-color:var(--bad); color:var(--bad); background:#fff; }
.exports { border-top:1px solid var(--line); padding-top:var(--s3); font-size:.95rem; }
.pager { margin:var(--s3) 0; }
code, .id { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size:.88em; }
code.id { overflow-wrap:anywhere; word-break:break-all; } code.id.short { white-space:nowrap; word-break:normal; }
/* A body shown as its plain text (the node busy rendering others): wrapped, in the body's font. */
pre.plain { white-space:pre-wrap; overflow-wrap:anywhere; font:inherit; margin:0; }
code { background:var(--soft); border-radius:4px; padding:1px 4px; }
pre { background:var(--soft); border-radius:var(--radius); padding:var(--s2); overflow-x:auto; }
pre.wrap { white-space:pre-wrap; overflow-wrap:anywhere; }
.copyable { display:flex; gap:var(--s2); align-items:flex-start; } .copyable pre { flex:1; min-width:0; margin:0; }
.scroll { overflow-x:auto; max-width:100%; }
table { border-collapse:collapse; margin:var(--s2) 0; } th, td { border:1px solid var(--line); padding:4px 8px; text-align:left; vertical-align:top; }
/* On a phone the header is the name and the languages on the first line (the federation's
   name wrapping under "Accord" when it is long: cut short, it could not be read whole), the
   menu below, its links wrapping onto more lines on a narrow screen or zoomed page rather
   than hidden past an edge. */
@media (max-width: 640px) {
  header.top { display:grid; grid-template-columns:minmax(0,1fr) auto; gap:var(--s1) var(--s2); padding:var(--s2) var(--s3); }
  .brandline { flex-wrap:nowrap; }
  .fed { white-space:normal; min-width:0; }
  .langs { grid-column:2; grid-row:1; margin-left:0; white-space:nowrap; }
  header nav { grid-column:1 / -1; grid-row:2; flex-wrap:wrap; }
  header nav a { padding:var(--s2) 0; }
}
/* On a phone a table of nodes is a card per row, each value under its column's name. */
@media (max-width: 640px) {
  table.stack, table.stack tbody, table.stack tr, table.stack td { display:block; }
  table.stack thead { position:absolute; width:1px; height:1px; overflow:hidden; clip:rect(0 0 0 0); }
  table.stack tr { border:1px solid var(--line); border-radius:8px; padding:var(--s1) var(--s2); margin-bottom:var(--s2); }
  table.stack td { border:0; padding:2px 0; } table.stack td:empty { display:none; }
  /* The column's name shown above each value; not read again (the cell's column header
     says it), where a browser takes the alternative text after "/". */
  table.stack td[data-label]::before { content:attr(data-label); content:attr(data-label) / ""; display:block; color:var(--muted); font-size:.8rem; }
}
td.n { text-align:right; font-variant-numeric:tabular-nums; } .zero { color:var(--muted); }
td.n a { display:inline-block; min-width:32px; min-height:28px; line-height:28px; text-align:right; }
/* On a phone the member tables show the members' codes (the full name on hover and to screen
   readers) and narrower row labels, so that the figures fit beside them. */
@media (max-width: 879px) {
  table.heat th[scope=col] .mname, table.compare th[scope=col] .mname { position:absolute; width:1px; height:1px; overflow:hidden; clip:rect(0 0 0 0); }
  table.heat th[scope=row], table.compare th[scope=row] { font-weight:normal; font-size:.82rem; min-width:6.5em; overflow-wrap:normal; word-break:normal; hyphens:auto; }
  table.heat td, table.compare td { min-width:40px; }
}
.panel { border:1px solid var(--line); border-radius:var(--radius); padding:var(--s2) var(--s4); margin-top:var(--s5); background:var(--soft); }
dl dt { font-weight:600; margin-top:var(--s2); } dl dd { margin-left:0; overflow-wrap:anywhere; }
.body { max-width:800px; } .body img { max-width:100%; }
.chart { margin:0; overflow-x:auto; } .chart svg { min-width:560px; }
/* What scrolls sideways on a phone (a chart, a wide table) shows a shade at the edge that
   hides more, since phones hide scrollbars; the shade scrolls away at the end. */
.chart, .scroll { background:linear-gradient(to right, var(--bg) 30%, transparent) left / 24px 100% no-repeat local, linear-gradient(to left, var(--bg) 30%, transparent) right / 24px 100% no-repeat local, radial-gradient(farthest-side at 0 50%, rgba(0,0,0,.2), transparent) left / 10px 100% no-repeat scroll, radial-gradient(farthest-side at 100% 50%, rgba(0,0,0,.2), transparent) right / 10px 100% no-repeat scroll; }
/* On a phone, links that change the page (language, pages, exports) are a thumb's size. */
@media (max-width: 640px) {
  .langs a, .pager a, .exports a { display:inline-block; padding:10px 4px; min-height:44px; box-sizing:border-box; }
  .pager a[rel] { margin:0 var(--s2) var(--s1) 0; }
  button:not(.linkish) { min-height:44px; }
} .legend { display:flex; flex-wrap:wrap; gap:var(--s2); font-size:.9rem; } .swatch { display:inline-block; width:12px; height:12px; border-radius:2px; }
.columns { display:grid; grid-template-columns:repeat(auto-fit, minmax(240px, 1fr)); gap:var(--s4); }
.column { border:1px solid var(--line); border-radius:var(--radius); padding:0 var(--s3); }
.years a { margin-bottom:var(--s1); }
@media print {
  header.top, footer.site, .notice:not([role=note]), form, .filterbox, .exports, .pager, .skip, button, #live { display:none !important; }
  body { font-size:11pt; } main { max-width:none; padding:0; } a { color:inherit; }
  .panel { background:none; border:1px solid #000; break-inside:avoid; }
  pre.wrap, code.id { background:none; }
}
"#;

const SCRIPT: &str = r#"
(function () {
  // Filters open beside the results on wide screens; on phones they stay folded above them.
  var box = document.getElementById('filters');
  if (box && window.matchMedia && window.matchMedia('(min-width: 880px)').matches) { box.open = true; }
  // Copy buttons (the verify command). "Copied" is said in a status line that is on the page
  // from the start (`data-status`): a region made live as it changes is not announced.
  document.querySelectorAll('button[data-copy]').forEach(function (b) {
    var label = b.textContent;
    var status = document.getElementById(b.dataset.status || '');
    b.addEventListener('click', function () {
      var el = document.getElementById(b.dataset.copy);
      if (!el) { return; }
      var done = function () {
        b.textContent = '✓ ' + label;
        if (status) { status.textContent = b.dataset.copied || ''; }
        setTimeout(function () {
          b.textContent = label;
          if (status) { status.textContent = ''; }
        }, 2000);
      };
      // The clipboard API needs HTTPS (or localhost); on a node served over plain HTTP the
      // text is selected and copied the older way, and stays selected if even that fails.
      var select = function () {
        var range = document.createRange();
        range.selectNodeContents(el);
        var sel = window.getSelection();
        sel.removeAllRanges();
        sel.addRange(range);
        try { if (document.execCommand('copy')) { done(); } } catch (e) { /* left selected */ }
      };
      if (navigator.clipboard && window.isSecureContext) {
        navigator.clipboard.writeText(el.textContent).then(done, select);
      } else {
        select();
      }
    });
  });
  document.querySelectorAll('button[data-print]').forEach(function (b) {
    b.addEventListener('click', function () { window.print(); });
  });
  // A table laid out as a card per row on a phone (table.stack, its parts display:block)
  // loses its table roles in some browsers, and a screen reader reads a run of text: the
  // roles are said outright.
  document.querySelectorAll('table.stack').forEach(function (t) {
    t.setAttribute('role', 'table');
    t.querySelectorAll('thead, tbody, tfoot').forEach(function (g) { g.setAttribute('role', 'rowgroup'); });
    t.querySelectorAll('tr').forEach(function (r) { r.setAttribute('role', 'row'); });
    t.querySelectorAll('th').forEach(function (h) {
      h.setAttribute('role', h.getAttribute('scope') === 'row' ? 'rowheader' : 'columnheader');
    });
    t.querySelectorAll('td').forEach(function (c) { c.setAttribute('role', 'cell'); });
  });
  // Completions while typing, from /v1/suggest (the search works without them). Choosing one
  // only fills the field, as typing would, and the reader submits: a page that went elsewhere
  // at the choice took a keyboard reader moving through the list where they had not asked to
  // go. Submitted as chosen, a direction becomes the filter, with the other filters kept (a
  // direction already chosen is replaced), and a title opens its record.
  var q = document.getElementById('q');
  var list = document.getElementById('suggestions');
  if (q && list && window.fetch) {
    var timer = null, asked = '', picks = Object.create(null), chosen = null;
    q.addEventListener('input', function (e) {
      // A completion chosen from the list (not typed), while the field holds it.
      var pick = picks[q.value];
      chosen = pick && (!e.inputType || e.inputType === 'insertReplacementText')
        ? { text: q.value, pick: pick } : null;
      if (chosen) { clearTimeout(timer); return; }
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
          picks = Object.create(null);
          // A text offered twice (a record titled as a direction is named) completes the
          // query only: which of the two was meant cannot be told.
          var seen = Object.create(null);
          v.completions.forEach(function (c) { seen[c.text] = (seen[c.text] || 0) + 1; });
          v.completions.forEach(function (c) {
            var o = document.createElement('option');
            o.value = c.text;
            if (seen[c.text] === 1 && c.kind === 'direction' && c.code) { picks[c.text] = { code: c.code }; }
            if (seen[c.text] === 1 && c.kind === 'title' && c.id) { picks[c.text] = { id: c.id }; }
            list.appendChild(o);
          });
        }).catch(function () {});
      }, 150);
    });
    if (q.form) {
      q.form.addEventListener('submit', function (e) {
        if (!chosen || q.value !== chosen.text) { return; }
        var pick = chosen.pick;
        e.preventDefault();
        if (pick.id) { window.location.href = '/records/' + encodeURIComponent(pick.id); return; }
        q.form.querySelectorAll('input[type=hidden][name=direction]').forEach(function (x) { x.remove(); });
        var f = document.createElement('input');
        f.type = 'hidden'; f.name = 'direction'; f.value = pick.code;
        q.form.appendChild(f);
        q.value = '';
        // Sent from here, with the filter in it (a form sent so fires no second submit event).
        q.form.submit();
      });
    }
  }
  // A live notice of new matching records. What it shows changes at once. Its status line,
  // for screen readers, is on the page from the start, empty, so that its first words are
  // announced; it changes at most every 15 seconds (a screen reader said every record as it
  // came), with the count as it is then; a button stops it.
  var notice = document.getElementById('live');
  var line = notice && notice.querySelector('[role=status]');
  var shown = notice && notice.querySelector('.live-shown');
  if (notice && line && window.EventSource) {
    var n = 0;
    var src = new EventSource('/v1/stream' + (notice.dataset.query || ''));
    var actions = notice.querySelector('.live-actions');
    // The word's form for n: Russian one / few / many, English one / other.
    var forms = (notice.dataset.forms || '').split('|');
    var ru = document.documentElement.lang === 'ru';
    var form = function (k) {
      if (!ru) { return k === 1 ? forms[0] : forms[2]; }
      var m10 = k % 10, m100 = k % 100;
      if (m10 === 1 && m100 !== 11) { return forms[0]; }
      if (m10 >= 2 && m10 <= 4 && (m100 < 12 || m100 > 14)) { return forms[1]; }
      return forms[2];
    };
    // After a lost connection or records the node could not keep for this page, the count
    // is a lower bound: "3+" (refreshing shows them all).
    var more = false, dropped = false, stopped = false;
    var words = function () {
      // Back after a lost connection (a phone that slept) with nothing counted: there may be
      // new records, or none.
      if (more && n === 0) { return notice.dataset.reconnected || ''; }
      return (more ? n + '+' : String(n)) + (forms.length === 3 ? ' ' + form(more ? 5 : n) : '');
    };
    // When the status line last changed (never yet: the first words are said at once), and
    // the change waiting for its turn.
    var said = null, waiting = null, every = 15000;
    var say = function () {
      waiting = null;
      if (stopped) { return; }
      said = Date.now();
      line.textContent = words();
    };
    var show = function () {
      if (stopped) { return; }
      if (shown) { shown.textContent = words(); }
      notice.classList.add('notice');
      if (actions) { actions.hidden = false; }
      if (waiting) { return; }
      var wait = said === null ? 0 : said + every - Date.now();
      if (wait <= 0) { say(); } else { waiting = setTimeout(say, wait); }
    };
    src.addEventListener('record', function () { n += 1; show(); });
    src.addEventListener('lagged', function () { more = true; show(); });
    src.addEventListener('error', function () { dropped = true; });
    src.addEventListener('open', function () { if (dropped) { more = true; show(); } });
    var stop = document.getElementById('live-stop');
    if (stop) {
      stop.addEventListener('click', function () {
        stopped = true;
        src.close();
        clearTimeout(waiting);
        notice.hidden = true;
        // The button goes with the notice: the keyboard's place moves to the results'
        // heading, not to the top of the page.
        var h = document.getElementById('results-h');
        if (h) { h.setAttribute('tabindex', '-1'); h.focus(); }
      });
    }
  }
})();
"#;

/// The web page's CSV export reads in the reader's language: headings, members' names, the
/// taxonomy's names, languages and statuses (scripts take `/v1/records` or `accord export`,
/// which keep the codes).
impl crate::exports::CsvNames for Ctx {
    fn column(&self, column: &str, lang: Option<&str>) -> String {
        let (ru, en) = match column {
            "id" => ("Идентификатор", "Id"),
            "created" => ("Опубликовано в сети", "Published on the network"),
            "date" => ("Дата документа", "Document date"),
            "member" => ("Государство", "Member state"),
            "kind" => ("Вид", "Kind"),
            "directions" => ("Направления", "Directions"),
            "languages" => ("Языки", "Languages"),
            "status" => ("Статус", "Status"),
            "publisher" => ("Издатель", "Publisher"),
            "tags" => ("Теги", "Tags"),
            "title" => ("Заголовок", "Title"),
            "url" => ("Страница записи", "Record page"),
            "attachments" => ("Файлы", "Files"),
            other => (other, other),
        };
        let name = match self.lang {
            Lang::Ru => ru,
            Lang::En => en,
        };
        match lang {
            Some(l) => format!("{name} ({})", self.language_text(l)),
            None => name.to_string(),
        }
    }

    fn value(&self, column: &str, code: &str) -> String {
        match column {
            "member" => self.member_text(code),
            "kind" | "directions" => self.name(code).to_string(),
            "languages" => self.language_text(code),
            "status" => self.lang.status(code),
            _ => code.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_interface_language_follows_the_readers_weights_and_serves_members_in_russian() {
        let lang = |accept: &str| {
            let mut h = HeaderMap::new();
            h.insert(header::ACCEPT_LANGUAGE, accept.parse().unwrap());
            Lang::detect(&[], &h).0
        };
        // The members' languages the interface lacks read Russian, the Commonwealth's own.
        for accept in [
            "ky-KG",
            "tg",
            "uz-Latn-UZ",
            "hy-AM,de;q=0.5",
            "az",
            "tk-TM",
            "kk",
            "be",
        ] {
            assert_eq!(lang(accept), Lang::Ru, "{accept}");
        }
        // Unless the reader lists English (or Russian) too, at whatever weight.
        assert_eq!(lang("hy-AM,en;q=0.5"), Lang::En);
        assert_eq!(lang("kk-KZ,en;q=0.2,ru;q=0.1"), Lang::En);
        // By weight, not by place; a language refused with q=0 is never taken.
        assert_eq!(lang("ru;q=0.3, en;q=0.9"), Lang::En);
        assert_eq!(lang("en;q=0, ru"), Lang::Ru);
        assert_eq!(lang("de-DE, en-GB;q=0.8, ru;q=0.7"), Lang::En);
        // Neither, nor anything readable: English.
        assert_eq!(lang("de, fr;q=0.5"), Lang::En);
        assert_eq!(lang("ru;q=abc"), Lang::En);
        // "eng" or "rus" are no tags of those languages' two-letter codes.
        assert_eq!(lang("rus"), Lang::En);
    }

    #[test]
    fn a_time_ago_reads_in_its_largest_unit_with_the_right_word() {
        assert_eq!(Lang::Ru.ago(42), "42 с назад");
        assert_eq!(Lang::En.ago(185), "3 min ago");
        assert_eq!(Lang::Ru.ago(5 * 3_600 + 59), "5 ч назад");
        assert_eq!(Lang::Ru.ago(259_200), "3 дня назад");
        assert_eq!(Lang::Ru.ago(86_400 * 21), "21 день назад");
        assert_eq!(Lang::Ru.ago(86_400 * 11), "11 дней назад");
        assert_eq!(Lang::En.ago(86_400), "1 day ago");
    }

    /// A Markdown table scrolls in its own keyboard-reachable box; a record's raw `<table>` is
    /// text, not a box.
    #[test]
    fn tables_scroll_in_their_own_box_and_raw_html_stays_text() {
        let html = markdown("| a | b |\n|---|---|\n| 1 | 2 |\n").into_string();
        assert!(
            html.starts_with("<div class=\"scroll\" tabindex=\"0\"><table>")
                && html.trim_end().ends_with("</table></div>"),
            "{html}"
        );
        let html = markdown("<table><tr><td>x</td></tr></table>").into_string();
        assert!(
            !html.contains("<table>") && !html.contains("<div"),
            "{html}"
        );
    }

    /// A body's headings sit under the page's own `<h1>` (the record's title): `#` is an
    /// `<h2>`, and `######` stays the last there is.
    #[test]
    fn body_headings_start_under_the_pages_title() {
        assert_eq!(markdown("# Итоги").into_string(), "<h2>Итоги</h2>\n");
        assert_eq!(markdown("### Опыт").into_string(), "<h4>Опыт</h4>\n");
        assert_eq!(markdown("###### a\n").into_string(), "<h6>a</h6>\n");
    }

    /// Every link of a body has a name to be announced by and goes somewhere: one without text
    /// is named by its file or its host (the host not said twice), one that goes nowhere safe
    /// is its text alone (a link to "#" did nothing), an e-mail address in brackets links.
    #[test]
    fn every_link_has_a_name_and_goes_somewhere() {
        let html = markdown(
            "[](https://example.org/files/%D0%BE%D1%82%D1%87%D1%91%D1%82.pdf) ![](https://example.org/) [x](javascript:alert(1)) [](javascript:alert(2)) [y](/relative) <a@b.example>",
        )
        .into_string();
        assert!(
            html.contains(">отчёт.pdf</a> (example.org)")
                && html.contains("<a href=\"https://example.org/\">example.org</a> x ")
                && html.contains(" y ")
                && html.contains("<a href=\"mailto:a@b.example\">a@b.example</a>"),
            "{html}"
        );
        assert_eq!(html.matches("(example.org)").count(), 1, "{html}");
        assert!(
            !html.contains("\"></a>")
                && !html.contains("href=\"#\"")
                && !html.contains("javascript"),
            "{html}"
        );
        // An image without a description inside a link's text names that link too.
        let html = markdown("[![](https://example.org/a.png)](https://example.org/)").into_string();
        assert!(html.contains(">a.png</a>"), "{html}");
        assert_eq!(link_name("https://example.org/a%2"), "a%2");
        assert_eq!(
            link_name("mailto:someone@example.org?subject=x"),
            "someone@example.org"
        );
    }

    /// Quotes, lists and emphasis nest at most 16 deep on a page, the text of deeper ones kept:
    /// a hostile body of a mebibyte of `>` was 28 MB of HTML. Ordinary nesting is untouched.
    #[test]
    fn deep_nesting_keeps_its_text_not_its_tags() {
        let deep = format!("{} the bottom", ">".repeat(100_000));
        let html = markdown(&deep).into_string();
        assert_eq!(
            html.matches("<blockquote>").count(),
            MARKDOWN_DEPTH,
            "{}",
            html.len()
        );
        assert_eq!(html.matches("</blockquote>").count(), MARKDOWN_DEPTH);
        assert!(
            html.contains("the bottom") && html.len() < 4_096,
            "{}",
            html.len()
        );
        let lists = format!("{}deep item", "- ".repeat(1_000));
        let html = markdown(&lists).into_string();
        assert_eq!(html.matches("<ul>").count(), html.matches("</ul>").count());
        assert_eq!(html.matches("<li>").count(), html.matches("</li>").count());
        // The deepest nesting of inline tags, read from the HTML.
        let inline_depth = |html: &str| {
            let (mut depth, mut deepest) = (0usize, 0usize);
            let mut rest = html;
            while let Some(at) = rest.find('<') {
                rest = &rest[at..];
                if rest.starts_with("<em>") || rest.starts_with("<strong>") {
                    depth += 1;
                    deepest = deepest.max(depth);
                } else if rest.starts_with("</em>") || rest.starts_with("</strong>") {
                    depth -= 1;
                }
                rest = &rest[1..];
            }
            deepest
        };
        let opening: String = (0..40).map(|i| format!("*w{i} ")).collect();
        let closing: String = (0..40).rev().map(|i| format!(" w{i}*")).collect();
        let emphasis = format!("{opening}middle{closing}");
        let html = markdown(&emphasis).into_string();
        assert_eq!(inline_depth(&html), MARKDOWN_DEPTH, "{html}");
        assert!(html.contains("w39 middle w39"), "{html}");
        assert_eq!(html.matches("<em>").count(), html.matches("</em>").count());
        let ordinary = "> quoted\n>\n> - one\n>   - *two* and **three**\n";
        assert_eq!(
            markdown(ordinary).into_string(),
            "<blockquote>\n<p>quoted</p>\n<ul>\n<li>one\n<ul>\n<li><em>two</em> and <strong>three</strong></li>\n</ul>\n</li>\n</ul>\n</blockquote>\n"
        );
    }

    #[test]
    fn counted_words_take_their_russian_and_english_forms() {
        let objects =
            |l: Lang, n| l.count(n, ["объект", "объекта", "объектов"], ["object", "objects"]);
        for (n, ru) in [
            (0, "0 объектов"),
            (1, "1 объект"),
            (2, "2 объекта"),
            (4, "4 объекта"),
            (5, "5 объектов"),
            (11, "11 объектов"),
            (12, "12 объектов"),
            (14, "14 объектов"),
            (21, "21 объект"),
            (22, "22 объекта"),
            (111, "111 объектов"),
            (1001, "1\u{a0}001 объект"),
        ] {
            assert_eq!(objects(Lang::Ru, n), ru);
        }
        assert_eq!(objects(Lang::En, 1), "1 object");
        assert_eq!(objects(Lang::En, 21), "21 objects");
        assert_eq!(objects(Lang::En, 0), "0 objects");
    }

    /// Every key the templates ask for has a text in both languages (a missing one shows "?").
    #[test]
    fn every_interface_key_is_translated() {
        let sources = [include_str!("mod.rs"), include_str!("pages.rs")];
        let mut keys = std::collections::BTreeSet::new();
        for src in sources {
            for part in src.split(".t(\"").skip(1) {
                if let Some(end) = part.find('"') {
                    keys.insert(&part[..end]);
                }
            }
        }
        // Keys passed through variables.
        for k in [
            "search",
            "overview",
            "compare",
            "federation",
            "network",
            "health",
            "self_node",
            "att_held",
            "att_fetching",
            "att_waiting_for_disk",
            "att_not_fetched",
            "up",
            "down",
            "never_seen",
            "agrees",
            "behind",
            "ahead",
            "holds_refused",
            "not_compared",
            "member",
            "direction",
            "kind",
            "lang",
            "status",
            "relevance",
            "newest",
            "oldest",
            "document_newest",
            "document_oldest",
            "directions",
            "kinds",
        ] {
            keys.insert(k);
        }
        assert!(keys.len() > 60, "{} keys found", keys.len());
        for k in keys {
            for l in [Lang::Ru, Lang::En] {
                assert_ne!(l.t(k), "?", "{k:?} has no {} text", l.code());
            }
            assert_ne!(Lang::Ru.t(k), Lang::En.t(k), "{k:?} is not translated")
        }
    }

    #[test]
    fn quotes_nest_as_each_language_nests_them() {
        let name = "Развитие системы «Электронное правительство»";
        assert_eq!(
            Lang::Ru.quote(name),
            "«Развитие системы „Электронное правительство“»"
        );
        assert_eq!(
            Lang::En.quote("Development of the \"Electronic Government\" system"),
            "“Development of the ‘Electronic Government’ system”"
        );
        assert_eq!(Lang::En.quote("🙂"), "“🙂”");
        assert_eq!(
            Lang::Ru.quote("Программа „Цифровой Казахстан“"),
            "«Программа „Цифровой Казахстан“»"
        );
        assert_eq!(Lang::En.quote("the “Digital” plan"), "“the ‘Digital’ plan”");
    }

    #[test]
    fn values_are_shown_in_the_interface_language() {
        assert_eq!(Lang::Ru.status("active"), "действует");
        assert_eq!(Lang::Ru.status("superseded"), "заменена");
        assert_eq!(Lang::Ru.language("kk"), "казахский");
        assert_eq!(Lang::En.language("be"), "Belarusian");
        assert_eq!(Lang::Ru.number(1234567), "1\u{a0}234\u{a0}567");
        assert_eq!(Lang::En.number(1234567), "1,234,567");
        assert_eq!(Lang::En.number(12), "12");
        assert_eq!(Lang::Ru.size(3 * 1024 * 1024 + 200 * 1024), "3,2 МБ");
        assert_eq!(Lang::En.size(2048), "2 KB");
        assert_eq!(Lang::En.size(10), "10 B");
        assert_eq!(Lang::Ru.size(51_316 << 20), "50,1 ГБ");
        assert_eq!(Lang::En.size(2_000_000 << 30), "2,000,000 GB");
        assert_eq!(Lang::Ru.size(512 << 20), "512 МБ");
        assert_eq!(Lang::Ru.period("2026-12"), "декабрь 2026");
        assert_eq!(Lang::En.period("2026-03"), "Mar 2026");
        assert_eq!(Lang::Ru.period("2025-Q4"), "IV кв. 2025");
        assert_eq!(Lang::Ru.period_short("2026-03"), "мар 2026");
        assert_eq!(Lang::Ru.period_short("2025-Q4"), "IV кв. 2025");
        assert_eq!(Lang::En.period_short("2026-03"), Lang::En.period("2026-03"));
        assert_eq!(Lang::En.period("2025-Q1"), "Q1 2025");
        assert_eq!(Lang::En.period("oops"), "oops");
        assert_eq!(Lang::Ru.more_directions(8), "ещё 8 направлений");
        assert_eq!(Lang::En.more_directions(1), "+ 1 more direction");
    }

    #[test]
    fn member_colours_are_stable_and_distinct() {
        assert_eq!(member_hue("KZ"), member_hue("KZ"));
        let hues: std::collections::BTreeSet<u32> =
            ["AM", "AZ", "BY", "KG", "KZ", "RU", "TJ", "UZ"]
                .iter()
                .map(|c| member_hue(c))
                .collect();
        assert_eq!(hues.len(), 8, "{hues:?}");
    }
}
