//! Text of attachments, for search: PDF (lopdf), DOCX, XLSX, PPTX, ODT/ODS/ODP (zip + XML),
//! plain text, Markdown and CSV.
//!
//! The files come from other states' publishers and may be hostile, so every extraction is
//! bounded: the input size, the number of archive entries, the bytes decompressed (a zip bomb
//! stops at the limit, it is never inflated in full), the characters kept, and the time. A
//! parser can still be made to fail in ways no bound inside the process survives: a PDF of a
//! thousand nested arrays overflows the PDF parser's stack, which aborts the whole process, and
//! a compressed stream inside a PDF is inflated by the parser without a limit. So a node runs
//! each extraction in a child process of its own program ([`extract_in_child`], the child side
//! [`run_child`]): the child's address space and CPU time are capped, it is killed at the
//! timeout, a system-call filter ([`crate::sandbox`]) leaves it able to read the file, write
//! the text and end, and nothing else, and whatever it does, only the child ends. [`extract_bounded`] (a thread of this process, for
//! tests and tools) catches a panic and stops waiting after the timeout, no more. A file that
//! cannot be extracted is still stored and served; only its text is missing from search.

use std::io::Read;
use std::time::Duration;

/// Bounds of one extraction.
#[derive(Debug, Clone, Copy)]
pub struct ExtractLimits {
    /// Largest input accepted, in bytes.
    pub max_input: usize,
    /// Most bytes decompressed from an archive in all.
    pub max_unzipped: u64,
    /// Most entries an archive may have.
    pub max_entries: usize,
    /// Characters of text kept.
    pub max_chars: usize,
    /// Time allowed.
    pub timeout: Duration,
}

impl Default for ExtractLimits {
    fn default() -> Self {
        ExtractLimits {
            max_input: 64 << 20,
            max_unzipped: 64 << 20,
            max_entries: 10_000,
            max_chars: 200_000,
            timeout: Duration::from_secs(20),
        }
    }
}

/// Why a file's text could not be extracted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExtractError {
    #[error("no text extraction for {0}")]
    Unsupported(String),
    #[error("malformed file: {0}")]
    Malformed(String),
    #[error("over a limit: {0}")]
    TooLarge(String),
    #[error("took longer than {0:?}")]
    Timeout(Duration),
    #[error("the parser failed: {0}")]
    Panicked(String),
    #[error("the extraction process failed: {0}")]
    Crashed(String),
    /// The child could not be started: the node's fault, not the file's (try again later).
    #[error("text extraction is unavailable: {0}")]
    Unavailable(String),
}

impl ExtractError {
    /// Whether the failure is the node's (the extraction can be tried again later), not the
    /// file's.
    pub fn is_transient(&self) -> bool {
        matches!(self, ExtractError::Unavailable(_))
    }

    /// The word that names the kind on the child's standard error (see [`run_child`]).
    fn kind(&self) -> &'static str {
        match self {
            ExtractError::Unsupported(_) => "unsupported",
            ExtractError::Malformed(_) => "malformed",
            ExtractError::TooLarge(_) => "too-large",
            ExtractError::Timeout(_) => "timeout",
            ExtractError::Panicked(_) => "panicked",
            ExtractError::Crashed(_) => "crashed",
            ExtractError::Unavailable(_) => "unavailable",
        }
    }

    /// An error as a child reported it: `kind<TAB>message`.
    fn from_child(line: &str) -> ExtractError {
        let (kind, message) = line.split_once('\t').unwrap_or(("crashed", line));
        let message = message.to_string();
        match kind {
            "unsupported" => ExtractError::Unsupported(message),
            "malformed" => ExtractError::Malformed(message),
            "too-large" => ExtractError::TooLarge(message),
            "panicked" => ExtractError::Panicked(message),
            _ => ExtractError::Crashed(message),
        }
    }

    /// The message without its kind's words.
    fn message(&self) -> String {
        match self {
            ExtractError::Unsupported(m)
            | ExtractError::Malformed(m)
            | ExtractError::TooLarge(m)
            | ExtractError::Panicked(m)
            | ExtractError::Crashed(m)
            | ExtractError::Unavailable(m) => m.clone(),
            ExtractError::Timeout(t) => format!("{t:?}"),
        }
    }
}

/// The subcommand of the node's program that runs one extraction as a child process:
/// `accord extract-text <media type> <name>`, the file on standard input, the text on standard
/// output (exit 0), or `kind<TAB>message` on standard error (exit [`CHILD_FAILED`]).
pub const CHILD_COMMAND: &str = "extract-text";

/// The exit code of a child whose extraction failed in an orderly way.
pub const CHILD_FAILED: i32 = 3;

/// Address space a child may map beyond what its program maps when it starts: a parser that
/// inflates a stream without a limit fails its allocation here (and the child ends) instead of
/// taking the machine's memory.
pub const CHILD_MEMORY: u64 = 512 << 20;

/// Bytes of a child's standard error kept for its error message.
const CHILD_STDERR: u64 = 4096;

/// The word that begins a child's line saying it runs without its system-call filter.
const CHILD_UNCONFINED: &str = "unconfined";

/// Whether the node has warned that its children run without their filter.
static WARNED_UNCONFINED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// The child's side of [`extract_in_child`]: caps its own address space and CPU time,
/// confines itself to its standard streams and its memory ([`crate::sandbox`]), reads the file from
/// standard input (at most `limits.max_input` bytes), extracts it on this thread and writes
/// the text to standard output. Returns the exit code.
pub fn run_child(media_type: &str, name: &str, limits: &ExtractLimits) -> i32 {
    use std::io::Write;
    cap_address_space(CHILD_MEMORY);
    // A parser that loops ends here too, even if the node that started it is gone.
    let cpu = limits.timeout.as_secs().saturating_add(1);
    let _ = rlimit::setrlimit(rlimit::Resource::CPU, cpu, cpu.saturating_add(1));
    // A parser's panic is reported as its one line below, not as the default hook's text.
    std::panic::set_hook(Box::new(|_| {}));
    // From here on the child reads its input, writes its output and manages its memory, and
    // can do nothing else (see `crate::sandbox`). Where no filter can be had, it says so on
    // its first line and goes on: the node warns its operator once.
    if let Err(e) = crate::sandbox::confine() {
        let _ = writeln!(std::io::stderr().lock(), "{CHILD_UNCONFINED}\t{e}");
    }
    let mut bytes = Vec::new();
    let read = std::io::stdin()
        .lock()
        .take(limits.max_input as u64 + 1)
        .read_to_end(&mut bytes);
    let result = match read {
        Err(e) => Err(ExtractError::Malformed(format!("reading the file: {e}"))),
        Ok(_) => std::panic::catch_unwind(|| extract(media_type, name, &bytes, limits))
            .unwrap_or_else(|p| Err(ExtractError::Panicked(panic_message(&p)))),
    };
    match result {
        Ok(text) => {
            let mut out = std::io::stdout().lock();
            if out
                .write_all(text.as_bytes())
                .and_then(|()| out.flush())
                .is_err()
            {
                return CHILD_FAILED;
            }
            0
        }
        Err(e) => {
            let message = e.message().replace(['\n', '\t'], " ");
            let _ = writeln!(std::io::stderr().lock(), "{}\t{message}", e.kind());
            CHILD_FAILED
        }
    }
}

/// Whether a child was ended by a signal that says nothing of the file: an interrupt, a
/// termination or a hang-up (the service stopping), or a kill that was not ours.
fn stopped_from_outside(s: &std::process::ExitStatus) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        // SIGHUP, SIGINT, SIGKILL, SIGTERM.
        matches!(s.signal(), Some(1 | 2 | 9 | 15))
    }
    #[cfg(not(unix))]
    {
        let _ = s;
        false
    }
}

/// Whether a child ran out of its CPU time (SIGXCPU, the limit `run_child` sets).
fn ran_out_of_time(s: &std::process::ExitStatus) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        s.signal() == Some(24)
    }
    #[cfg(not(unix))]
    {
        let _ = s;
        false
    }
}

/// Lowers this process's address-space limit to what it maps now plus `budget` bytes (Linux;
/// elsewhere nothing is capped).
fn cap_address_space(budget: u64) {
    #[cfg(target_os = "linux")]
    {
        let mapped = std::fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix("VmSize:"))
                    .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            })
            .map(|kib| kib * 1024);
        if let Some(mapped) = mapped {
            let limit = mapped.saturating_add(budget);
            let _ = rlimit::setrlimit(rlimit::Resource::AS, limit, limit);
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = budget;
}

fn panic_message(p: &(dyn std::any::Any + Send)) -> String {
    p.downcast_ref::<&str>()
        .map(|s| (*s).to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "panic".into())
}

/// [`extract`] in a child process, `program extract-text <media type> <name>` (the node's own
/// program; see [`run_child`]): a parser that aborts, overflows its stack or exhausts its
/// memory ends the child only, and a child still running at `limits.timeout` is killed.
pub fn extract_in_child(
    program: &std::path::Path,
    media_type: &str,
    name: &str,
    bytes: std::sync::Arc<Vec<u8>>,
    limits: &ExtractLimits,
) -> Result<String, ExtractError> {
    use std::process::{Command, Stdio};
    check_size(bytes.len(), limits)?;
    if [media_type, name]
        .iter()
        .any(|s| s.chars().any(char::is_control))
    {
        return Err(ExtractError::Malformed(
            "the file's name or media type holds control characters".into(),
        ));
    }
    let mut command = Command::new(program);
    command
        .arg(CHILD_COMMAND)
        .arg("--timeout-secs")
        .arg(limits.timeout.as_secs().to_string())
        // The name and type are values, never options ("--help", "-draft.pdf").
        .arg("--")
        .arg(media_type)
        .arg(name)
        // The node's allocator (mimalloc) reserves 1 GiB of address space up front, which
        // would count against the child's cap before any file is read; a child needs little.
        .env("MIMALLOC_ARENA_RESERVE", "64MiB")
        .env_remove("RUST_LOG")
        .env_remove("RUST_BACKTRACE")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // In a process group of its own: a Ctrl-C at the node's terminal is the node's to handle
    // (it stops, and the child with it when its pipes close), not a signal to the child.
    #[cfg(unix)]
    std::os::unix::process::CommandExt::process_group(&mut command, 0);
    let mut child = command
        .spawn()
        .map_err(|e| ExtractError::Unavailable(format!("{}: {e}", program.display())))?;
    let (Some(mut stdin), Some(stdout), Some(stderr)) =
        (child.stdin.take(), child.stdout.take(), child.stderr.take())
    else {
        let _ = child.kill();
        let _ = child.wait();
        return Err(ExtractError::Unavailable("no pipes to the child".into()));
    };
    // The file is written, and the text and the errors read, on threads of their own: a
    // child that stops reading or writes much before it reads cannot block this one.
    let spawn = |name: &str| std::thread::Builder::new().name(name.into());
    let writer = spawn("accord-extract-in").spawn(move || {
        use std::io::Write;
        let _ = stdin.write_all(&bytes);
    });
    let max_out = (limits.max_chars as u64)
        .saturating_mul(4)
        .saturating_add(1);
    let (tx, rx) = std::sync::mpsc::channel();
    let reader = spawn("accord-extract-out").spawn(move || {
        let mut out = Vec::new();
        let _ = stdout.take(max_out).read_to_end(&mut out);
        let _ = tx.send(out);
    });
    let errors = spawn("accord-extract-err").spawn(move || {
        let mut err = Vec::new();
        let _ = stderr.take(CHILD_STDERR).read_to_end(&mut err);
        err
    });
    let (Ok(writer), Ok(reader), Ok(errors)) = (writer, reader, errors) else {
        // No thread to spare: the node's problem, not the file's. The child ends with its
        // pipes.
        let _ = child.kill();
        let _ = child.wait();
        return Err(ExtractError::Unavailable(
            "no thread for the child's pipes".into(),
        ));
    };
    // The child closes its standard output when it ends (or is killed).
    let out = rx.recv_timeout(limits.timeout);
    if out.is_err() {
        let _ = child.kill();
    }
    let status = child.wait();
    let _ = writer.join();
    let _ = reader.join();
    let err = errors.join().unwrap_or_default();
    let Ok(out) = out else {
        return Err(ExtractError::Timeout(limits.timeout));
    };
    let err = String::from_utf8_lossy(&err);
    let (unconfined, err): (Vec<&str>, Vec<&str>) = err
        .lines()
        .filter(|l| !l.trim().is_empty())
        .partition(|l| l.starts_with(CHILD_UNCONFINED) && l.contains('\t'));
    if let Some(line) = unconfined.first()
        && !WARNED_UNCONFINED.swap(true, std::sync::atomic::Ordering::Relaxed)
    {
        let why = line.split_once('\t').map_or(*line, |(_, why)| why);
        tracing::warn!(
            reason = why,
            "attachment text extraction runs without its system-call filter on this machine"
        );
    }
    match status {
        Ok(s) if s.success() => Ok(cut(
            String::from_utf8_lossy(&out).into_owned(),
            limits.max_chars,
        )),
        Ok(s) if s.code() == Some(CHILD_FAILED) => Err(ExtractError::from_child(
            err.last().copied().unwrap_or_default(),
        )),
        Ok(s) if stopped_from_outside(&s) => {
            // Stopped with the node (a service stop signals every process of the service), or
            // by the machine: nothing to do with the file; read again at the next start.
            Err(ExtractError::Unavailable(format!(
                "the extraction was stopped: {s}"
            )))
        }
        Ok(s) if ran_out_of_time(&s) => Err(ExtractError::Timeout(limits.timeout)),
        Ok(s) => {
            // The first line the program printed, if any ("… has overflowed its stack").
            let said: String = err
                .first()
                .copied()
                .unwrap_or_default()
                .chars()
                .take(200)
                .collect();
            Err(ExtractError::Crashed(if said.is_empty() {
                s.to_string()
            } else {
                format!("{s}: {said}")
            }))
        }
        Err(e) => Err(ExtractError::Crashed(e.to_string())),
    }
}

/// What kind of extraction a file gets, from its media type and name.
fn kind_of(media_type: &str, name: &str) -> Option<&'static str> {
    let ext = name
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .unwrap_or_default();
    Some(match (media_type, ext.as_str()) {
        ("application/pdf", _) | (_, "pdf") => "pdf",
        (_, "docx") => "docx",
        (_, "xlsx") => "xlsx",
        (_, "pptx") => "pptx",
        (_, "odt" | "ods" | "odp") => "odf",
        (m, _) if m.contains("wordprocessingml") => "docx",
        (m, _) if m.contains("spreadsheetml") => "xlsx",
        (m, _) if m.contains("presentationml") => "pptx",
        (m, _) if m.starts_with("application/vnd.oasis.opendocument") => "odf",
        ("text/markdown", _) | (_, "md") => "markdown",
        (m, _) if m.starts_with("text/") => "text",
        (_, "txt" | "csv") => "text",
        _ => return None,
    })
}

/// Extracts the text of a file on the calling thread (bounded in size, not in time: see
/// [`extract_bounded`]).
pub fn extract(
    media_type: &str,
    name: &str,
    bytes: &[u8],
    limits: &ExtractLimits,
) -> Result<String, ExtractError> {
    check_size(bytes.len(), limits)?;
    let kind = kind_of(media_type, name)
        .ok_or_else(|| ExtractError::Unsupported(format!("{media_type} ({name})")))?;
    let text = match kind {
        "pdf" => pdf(bytes, limits)?,
        "docx" => xml_in_zip(bytes, limits, |n| {
            n == "word/document.xml" || n.starts_with("word/footnotes")
        })?,
        "xlsx" => xml_in_zip(bytes, limits, |n| n == "xl/sharedStrings.xml")?,
        "pptx" => xml_in_zip(bytes, limits, |n| {
            n.starts_with("ppt/slides/slide") && n.ends_with(".xml")
        })?,
        "odf" => xml_in_zip(bytes, limits, |n| n == "content.xml")?,
        "markdown" => crate::analysis::markdown_to_plain(&String::from_utf8_lossy(bytes)),
        _ => String::from_utf8_lossy(bytes).into_owned(),
    };
    Ok(cut(text, limits.max_chars))
}

/// A file over `limits.max_input` is refused before it is read.
fn check_size(len: usize, limits: &ExtractLimits) -> Result<(), ExtractError> {
    if len > limits.max_input {
        return Err(ExtractError::TooLarge(format!(
            "{len} bytes (at most {})",
            limits.max_input
        )));
    }
    Ok(())
}

fn cut(mut text: String, max_chars: usize) -> String {
    if let Some((i, _)) = text.char_indices().nth(max_chars) {
        text.truncate(i);
    }
    text
}

/// [`extract`] on its own thread: a parser that panics is an error, one that runs past
/// `limits.timeout` is abandoned (the thread finishes on its own; nothing waits for it). One
/// that overflows its stack aborts this process: a node extracts with [`extract_in_child`].
pub fn extract_bounded(
    media_type: &str,
    name: &str,
    bytes: std::sync::Arc<Vec<u8>>,
    limits: ExtractLimits,
) -> Result<String, ExtractError> {
    let (tx, rx) = std::sync::mpsc::channel();
    let (m, n) = (media_type.to_string(), name.to_string());
    let spawned = std::thread::Builder::new()
        .name("accord-extract".into())
        .spawn(move || {
            let r = std::panic::catch_unwind(|| extract(&m, &n, &bytes, &limits));
            let r = r.unwrap_or_else(|p| Err(ExtractError::Panicked(panic_message(&p))));
            let _ = tx.send(r);
        });
    if let Err(e) = spawned {
        return Err(ExtractError::Panicked(e.to_string()));
    }
    rx.recv_timeout(limits.timeout)
        .unwrap_or(Err(ExtractError::Timeout(limits.timeout)))
}

/// A minimal DOCX of `paragraphs` (only `word/document.xml`, which is all extraction reads):
/// for tests.
pub fn sample_docx(paragraphs: &[&str]) -> Result<Vec<u8>, zip::result::ZipError> {
    use std::io::Write;
    let mut xml = String::from(r#"<w:document xmlns:w="w"><w:body>"#);
    for p in paragraphs {
        let escaped = p
            .replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;");
        xml.push_str(&format!("<w:p><w:r><w:t>{escaped}</w:t></w:r></w:p>"));
    }
    xml.push_str("</w:body></w:document>");
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    w.start_file(
        "word/document.xml",
        zip::write::SimpleFileOptions::default(),
    )?;
    w.write_all(xml.as_bytes())?;
    Ok(w.finish()?.into_inner())
}

/// A minimal one-page PDF showing `lines` (Latin text, Helvetica): what the demo attaches
/// and what tests extract from.
pub fn sample_pdf(lines: &[&str]) -> Vec<u8> {
    use lopdf::content::{Content, Operation};
    use lopdf::{Document, Object, Stream, dictionary};
    let mut doc = Document::with_version("1.5");
    let pages_id = doc.new_object_id();
    let font_id = doc.add_object(dictionary! {
        "Type" => "Font", "Subtype" => "Type1", "BaseFont" => "Helvetica",
        "Encoding" => "WinAnsiEncoding",
    });
    let resources_id = doc.add_object(dictionary! { "Font" => dictionary! { "F1" => font_id } });
    let mut ops = vec![
        Operation::new("BT", vec![]),
        Operation::new("Tf", vec!["F1".into(), 14.into()]),
        Operation::new("Td", vec![72.into(), 770.into()]),
    ];
    for line in lines {
        ops.push(Operation::new("Tj", vec![Object::string_literal(*line)]));
        ops.push(Operation::new("Td", vec![0.into(), (-20).into()]));
    }
    ops.push(Operation::new("ET", vec![]));
    let content = Content { operations: ops }.encode().unwrap_or_default();
    let content_id = doc.add_object(Stream::new(dictionary! {}, content));
    let page_id = doc.add_object(dictionary! {
        "Type" => "Page", "Parent" => pages_id, "Contents" => content_id,
    });
    doc.objects.insert(
        pages_id,
        Object::Dictionary(dictionary! {
            "Type" => "Pages", "Kids" => vec![page_id.into()], "Count" => 1,
            "Resources" => resources_id,
            "MediaBox" => vec![0.into(), 0.into(), 595.into(), 842.into()],
        }),
    );
    let catalog_id = doc.add_object(dictionary! { "Type" => "Catalog", "Pages" => pages_id });
    doc.trailer.set("Root", catalog_id);
    let mut out = Vec::new();
    let _ = doc.save_to(&mut out);
    out
}

/// A one-page PDF whose page names one more object, `depth` arrays nested in each other: a
/// hostile file (a few kilobytes that overflow the PDF parser's stack), for tests. Written by
/// hand: a PDF library would recurse as deep to write it.
pub fn nested_arrays_pdf(depth: usize) -> Vec<u8> {
    let mut deep = vec![b'['; depth];
    deep.extend(std::iter::repeat_n(b']', depth));
    let objects: [&[u8]; 4] = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Extra 4 0 R >>",
        &deep,
    ];
    let mut out = b"%PDF-1.5\n".to_vec();
    let mut offsets = Vec::new();
    for (i, o) in objects.iter().enumerate() {
        offsets.push(out.len());
        out.extend(format!("{} 0 obj\n", i + 1).as_bytes());
        out.extend(*o);
        out.extend(b"\nendobj\n");
    }
    let xref = out.len();
    out.extend(format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1).as_bytes());
    for o in offsets {
        out.extend(format!("{o:010} 00000 n \n").as_bytes());
    }
    out.extend(
        format!(
            "trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n",
            objects.len() + 1
        )
        .as_bytes(),
    );
    out
}

fn pdf(bytes: &[u8], limits: &ExtractLimits) -> Result<String, ExtractError> {
    let doc =
        lopdf::Document::load_mem(bytes).map_err(|e| ExtractError::Malformed(e.to_string()))?;
    let mut out = String::new();
    for page in doc.get_pages().keys() {
        if out.chars().count() >= limits.max_chars {
            break;
        }
        // A page whose text cannot be read is skipped; the others still count.
        if let Ok(t) = doc.extract_text(&[*page]) {
            out.push_str(&t);
            out.push('\n');
        }
    }
    Ok(out)
}

/// The text of the XML entries `wanted` selects in a zip archive (Office Open XML and
/// OpenDocument files), paragraphs on their own lines.
fn xml_in_zip(
    bytes: &[u8],
    limits: &ExtractLimits,
    wanted: impl Fn(&str) -> bool,
) -> Result<String, ExtractError> {
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes))
        .map_err(|e| ExtractError::Malformed(e.to_string()))?;
    if zip.len() > limits.max_entries {
        return Err(ExtractError::TooLarge(format!(
            "{} archive entries (at most {})",
            zip.len(),
            limits.max_entries
        )));
    }
    let mut names: Vec<String> = zip
        .file_names()
        .filter_map(Result::ok)
        .filter(|n| wanted(n))
        .map(|n| n.into_owned())
        .collect();
    names.sort_by_key(|n| (n.len(), n.clone()));
    if names.is_empty() {
        return Err(ExtractError::Malformed(
            "no document part in the archive".into(),
        ));
    }
    let mut budget = limits.max_unzipped;
    let mut out = String::new();
    for name in names {
        let entry = zip
            .by_name(&name)
            .map_err(|e| ExtractError::Malformed(e.to_string()))?;
        // The declared size is not trusted: reading stops one byte past the budget.
        let mut xml = Vec::new();
        entry
            .take(budget + 1)
            .read_to_end(&mut xml)
            .map_err(|e| ExtractError::Malformed(format!("{name}: {e}")))?;
        if xml.len() as u64 > budget {
            return Err(ExtractError::TooLarge(format!(
                "more than {} bytes decompressed",
                limits.max_unzipped
            )));
        }
        budget -= xml.len() as u64;
        xml_text(&xml, &mut out)?;
        out.push('\n');
        if out.chars().count() >= limits.max_chars {
            break;
        }
    }
    Ok(out)
}

/// Appends the character data of an XML document, a line break after each paragraph,
/// heading, table cell or line-break element.
fn xml_text(xml: &[u8], out: &mut String) -> Result<(), ExtractError> {
    use quick_xml::events::Event;
    let mut reader = quick_xml::Reader::from_reader(xml);
    let mut buf = Vec::new();
    loop {
        match reader.read_event_into(&mut buf) {
            Ok(Event::Text(t)) => out.push_str(&t),
            Ok(Event::GeneralRef(r)) => {
                // Entities in text: the five predefined ones and character references.
                let name: &str = &r;
                let named = match name {
                    "amp" => Some('&'),
                    "lt" => Some('<'),
                    "gt" => Some('>'),
                    "quot" => Some('"'),
                    "apos" => Some('\''),
                    _ => r.resolve_char_ref().ok().flatten(),
                };
                if let Some(c) = named {
                    out.push(c);
                }
            }
            Ok(Event::CData(t)) => out.push_str(&t),
            Ok(Event::End(e)) => {
                if matches!(e.local_name().as_ref(), "p" | "h" | "tc" | "br" | "si") {
                    out.push('\n');
                }
            }
            Ok(Event::Empty(e)) => {
                if matches!(e.local_name().as_ref(), "br" | "tab" | "s" | "line-break") {
                    out.push(' ');
                }
            }
            Ok(Event::Eof) => return Ok(()),
            Err(e) => return Err(ExtractError::Malformed(format!("XML: {e}"))),
            _ => {}
        }
        buf.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn zip_of(entries: &[(&str, &[u8])]) -> Vec<u8> {
        let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        for (name, data) in entries {
            w.start_file(*name, zip::write::SimpleFileOptions::default())
                .unwrap();
            w.write_all(data).unwrap();
        }
        w.finish().unwrap().into_inner()
    }

    #[test]
    fn docx_and_odt_text_is_extracted_with_paragraphs() {
        let docx = zip_of(&[(
            "word/document.xml",
            br#"<w:document xmlns:w="x"><w:body><w:p><w:r><w:t>Decree on</w:t></w:r><w:r><w:t xml:space="preserve"> proactive services</w:t></w:r></w:p><w:p><w:r><w:t>&#1055;&#1088;&#1080;&#1082;&#1072;&#1079; &amp; more</w:t></w:r></w:p></w:body></w:document>"#,
        )]);
        let t = extract(
            "application/octet-stream",
            "decree.docx",
            &docx,
            &ExtractLimits::default(),
        )
        .unwrap();
        assert_eq!(t.trim(), "Decree on proactive services\nПриказ & more");
        let odt = zip_of(&[(
            "content.xml",
            br#"<office:document-content xmlns:office="o" xmlns:text="t"><office:body><office:text><text:h>Curriculum</text:h><text:p>Digital skills</text:p></office:text></office:body></office:document-content>"#,
        )]);
        let t = extract(
            "application/vnd.oasis.opendocument.text",
            "c.odt",
            &odt,
            &ExtractLimits::default(),
        )
        .unwrap();
        assert_eq!(t.trim(), "Curriculum\nDigital skills");
    }

    #[test]
    fn a_zip_bomb_stops_at_the_limit_and_garbage_is_an_error() {
        // 200 MB of zeros compresses to a few hundred kilobytes.
        let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        w.start_file(
            "word/document.xml",
            zip::write::SimpleFileOptions::default(),
        )
        .unwrap();
        let zeros = vec![0u8; 1 << 20];
        for _ in 0..200 {
            w.write_all(&zeros).unwrap();
        }
        let bomb = w.finish().unwrap().into_inner();
        assert!(bomb.len() < 2 << 20, "{}", bomb.len());
        let e = extract("", "bomb.docx", &bomb, &ExtractLimits::default()).unwrap_err();
        assert!(matches!(e, ExtractError::TooLarge(_)), "{e}");
        for (name, bytes) in [
            ("x.docx", b"PK\x03\x04 not really".as_slice()),
            ("x.pdf", b"%PDF-1.7\n1 0 obj << /Type /Catalog /Pages 9 0 R >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF".as_slice()),
            ("x.pdf", b"".as_slice()),
        ] {
            let r = extract_bounded("", name, std::sync::Arc::new(bytes.to_vec()), ExtractLimits::default());
            assert!(r.is_err() || r.as_deref().is_ok_and(|t| t.trim().is_empty()), "{name}: {r:?}");
        }
        assert!(matches!(
            extract("image/png", "x.png", b"\x89PNG", &ExtractLimits::default()),
            Err(ExtractError::Unsupported(_))
        ));
    }

    #[test]
    fn pdf_text_is_extracted() {
        let pdf = sample_pdf(&["Methodology of teleradiology", "second line"]);
        let t = extract_bounded(
            "application/pdf",
            "m.pdf",
            std::sync::Arc::new(pdf),
            ExtractLimits::default(),
        )
        .unwrap();
        assert!(
            t.contains("teleradiology") && t.contains("second line"),
            "{t:?}"
        );
    }

    #[test]
    fn text_is_cut_at_the_character_limit() {
        let limits = ExtractLimits {
            max_chars: 5,
            ..Default::default()
        };
        assert_eq!(
            extract("text/plain", "a.txt", "Привет, мир".as_bytes(), &limits).unwrap(),
            "Приве"
        );
    }
}
