//! The log family: `readProcess*Log`, `tailProcess*Log`, `clearProcessLogs`, the main log.

use super::*;

pub(crate) fn clamp(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

// ---------------------------------------------------------------------------------------
// Logs

/// supervisord's `readFile` offsets: `(start, max length)` in a file of `size` bytes.
pub fn read_range(offset: i64, length: i64, size: u64) -> Result<(u64, u64), Fault> {
    if offset < 0 {
        // The last -offset bytes; a length is not allowed then.
        if length != 0 {
            return Err(bare(Code::BadArguments));
        }
        let want = offset.unsigned_abs();
        Ok((size.saturating_sub(want), want))
    } else {
        if length < 0 {
            return Err(bare(Code::BadArguments));
        }
        let len = if length == 0 { u64::MAX } else { length as u64 };
        Ok((offset as u64, len))
    }
}

/// supervisord's `tailFile` arithmetic: `(offset, length, overflow)` to read.
pub fn tail_range(offset: i64, length: i64, size: i64) -> (i64, i64, bool) {
    let (mut offset, mut length) = (offset, length);
    let mut overflow = false;
    if size > offset.saturating_add(length) {
        overflow = true;
        offset = size - 1;
    }
    if offset.saturating_add(length) > size {
        if offset > size - 1 {
            length = 0;
        }
        offset = size.saturating_sub(length);
    }
    (offset.max(0), length.max(0), overflow)
}

pub(crate) fn read_at(path: &Path, start: u64, len: u64) -> std::io::Result<(Vec<u8>, u64)> {
    let mut f = std::fs::File::open(path)?;
    let size = f.metadata()?.len();
    if start >= size || len == 0 {
        return Ok((Vec::new(), size));
    }
    f.seek(SeekFrom::Start(start))?;
    let n = len.min(size - start).min(MAX_READ);
    let mut buf = Vec::with_capacity(n as usize);
    f.take(n).read_to_end(&mut buf)?;
    Ok((buf, size))
}

pub(crate) fn file_size(path: &Path) -> std::io::Result<u64> {
    Ok(std::fs::metadata(path)?.len())
}

pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Option<T> {
    tokio::task::spawn_blocking(f).await.ok()
}

pub(crate) async fn read_log_file(path: Option<String>, offset: i64, length: i64) -> R {
    let Some(path) = path else {
        // supervisord's `RPCError(NO_FILE, None)`: no extra text.
        return Err(bare(Code::NoFile));
    };
    if !Path::new(&path).exists() {
        // Configured but not written yet: empty, as supervisord's AUTO log files are (it
        // creates them at start). Offsets are still checked.
        read_range(offset, length, 0)?;
        return Ok(Value::str(""));
    }
    let r = blocking(move || -> Result<Vec<u8>, Fault> {
        let p = Path::new(&path);
        let size = file_size(p).map_err(|_| bare(Code::Failed))?;
        let (start, len) = read_range(offset, length, size)?;
        read_at(p, start, len)
            .map(|(b, _)| b)
            .map_err(|_| bare(Code::Failed))
    })
    .await
    .unwrap_or_else(|| Err(bare(Code::Failed)))?;
    Ok(Value::String(String::from_utf8_lossy(&r).into_owned()))
}

pub(crate) async fn tail_log_file(path: Option<String>, offset: i64, length: i64) -> Value {
    let empty = |o: i64| Value::Array(vec![Value::str(""), Value::Int(o), Value::Bool(false)]);
    let Some(path) = path.filter(|p| Path::new(p).exists()) else {
        return empty(0);
    };
    blocking(move || {
        let p = Path::new(&path);
        let Ok(size) = file_size(p) else {
            return empty(offset);
        };
        let size = i64::try_from(size).unwrap_or(i64::MAX);
        let (start, len, overflow) = tail_range(offset, length, size);
        match read_at(p, start as u64, len as u64) {
            Ok((data, _)) => Value::Array(vec![
                Value::String(String::from_utf8_lossy(&data).into_owned()),
                Value::Int(size),
                Value::Bool(overflow),
            ]),
            Err(_) => empty(offset),
        }
    })
    .await
    .unwrap_or_else(|| empty(offset))
}

/// Truncate a process's log files (writers append, so they carry on at the new end) and
/// forget its in-memory lines.
pub(crate) fn clear_logs(cx: &Compat, p: &ProcessInfo) -> std::io::Result<()> {
    for path in [&p.stdout_logfile, &p.stderr_logfile].into_iter().flatten() {
        match std::fs::OpenOptions::new().write(true).open(path) {
            Ok(f) => f.set_len(0)?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    if let Some(out) = cx.supervisor.output(&p.name) {
        out.stdout.clear();
        out.stderr.clear();
    }
    Ok(())
}

/// The main log's file, when `[supervisord] logfile` configures one.
pub fn main_log_file(cx: &Compat) -> Option<PathBuf> {
    cx.daemon
        .view()
        .active
        .rpc
        .as_ref()
        .and_then(|r| r.logfile.as_ref())
        .and_then(|l| l.path.clone())
}

pub(crate) async fn read_main_log(cx: &Compat, offset: i64, length: i64) -> R {
    if let Some(path) = main_log_file(cx) {
        return read_log_file(Some(path.display().to_string()), offset, length).await;
    }
    let log = main_log();
    let (start, len) = read_range(offset, length, log.size())?;
    let (data, _) = log.read(start, len.min(MAX_READ));
    Ok(Value::String(String::from_utf8_lossy(&data).into_owned()))
}

pub(crate) fn clear_main_log(cx: &Compat) -> R {
    if let Some(path) = main_log_file(cx) {
        if !path.exists() {
            return Err(bare(Code::NoFile));
        }
        std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .and_then(|f| f.set_len(0))
            .map_err(|_| bare(Code::Failed))?;
    }
    main_log().clear();
    tracing::info!("reopening log file");
    Ok(Value::Bool(true))
}
