//! Large work (a sync of hundreds of changes or more, a turn of tidying) reads and rewrites
//! more pages than SQLite's ordinary 2 MB page cache holds, and spilling and re-reading them
//! cost most of its time. For its duration the writer's connection gets a larger page cache;
//! afterwards the cache shrinks back and its memory is handed back, so an idle server stays
//! small.

use rusqlite::Connection;

/// SQLite's page cache for ordinary work, in KiB: its default.
const PAGE_CACHE_KIB: i64 = 2_000;
/// The page cache for large work, in KiB.
const LARGE_PAGE_CACHE_KIB: i64 = 32_768;

/// Runs `work` with the page cache for large work, then shrinks it back and hands its memory
/// back.
pub fn with_large_page_cache<T>(conn: &Connection, work: impl FnOnce() -> T) -> T {
    set_page_cache(conn, LARGE_PAGE_CACHE_KIB);
    let result = work();
    set_page_cache(conn, PAGE_CACHE_KIB);
    if let Err(e) = conn.execute_batch("PRAGMA shrink_memory;") {
        eprintln!("warning: could not release the database page cache: {e}");
    }
    hand_back_freed_memory();
    result
}

/// Sets the page cache size; a failure only costs speed, so it is logged.
fn set_page_cache(conn: &Connection, kib: i64) {
    if let Err(e) = conn.pragma_update(None, "cache_size", -kib) {
        eprintln!("warning: could not set the database page cache to {kib} KiB: {e}");
    }
}

/// SQLite allocates its pages with the C library's `malloc`. glibc keeps what is freed
/// inside its heap unless asked to give it back; musl's allocator gives it back by itself.
#[cfg(target_env = "gnu")]
fn hand_back_freed_memory() {
    // SAFETY: malloc_trim only releases memory that is free; it touches nothing in use.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(not(target_env = "gnu"))]
fn hand_back_freed_memory() {}

#[cfg(test)]
mod tests {
    use super::*;

    fn page_cache(conn: &Connection) -> i64 {
        conn.pragma_query_value(None, "cache_size", |row| row.get(0))
            .unwrap()
    }

    #[test]
    fn large_work_gets_the_large_page_cache_and_the_ordinary_one_comes_back() {
        let conn = Connection::open_in_memory().unwrap();
        let during = with_large_page_cache(&conn, || page_cache(&conn));
        assert_eq!(during, -LARGE_PAGE_CACHE_KIB);
        assert_eq!(page_cache(&conn), -PAGE_CACHE_KIB);
    }
}
