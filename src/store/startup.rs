//! The database check at start: a damaged `vigil.db` is found before anything uses it.

use std::path::Path;

/// Check `db` (`PRAGMA quick_check`). Damaged: refuse to start with a clear error, or with
/// `recover`, set it aside (with its `-wal`/`-shm`) and return the fault that keeps vigil
/// HALTED on the new database.
pub fn check_database(db: &Path, recover: bool) -> anyhow::Result<Vec<String>> {
    if !db.exists() {
        return Ok(Vec::new());
    }
    let found = match super::Store::check(db) {
        Ok(()) => return Ok(Vec::new()),
        Err(found) => found,
    };
    if !recover {
        anyhow::bail!(
            "database {} failed its integrity check: {found}. Nothing was changed. Restore it \
             from a backup, or start with --recover to set it aside and start HALTED on a new \
             database (the trading state and seq numbering survive: they are in vigil.state)",
            db.display()
        );
    }
    let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%SZ");
    let aside = db.with_extension(format!("db.damaged-{stamp}"));
    std::fs::rename(db, &aside)
        .map_err(|e| anyhow::anyhow!("setting {} aside: {e}", db.display()))?;
    for ext in ["db-wal", "db-shm"] {
        let side = db.with_extension(ext);
        if side.exists() {
            let _ = std::fs::rename(
                &side,
                aside.with_extension(format!("{ext}.damaged-{stamp}")),
            );
        }
    }
    let fault = format!(
        "database {} failed its integrity check ({found}); set aside as {} by --recover, \
         history before this start is not served",
        db.display(),
        aside.display()
    );
    tracing::error!("{fault}");
    Ok(vec![fault])
}
