//! Ingest yields the CPU to queries (`ingest.nice`). On a machine that runs the query
//! functions beside ingest, a batch being applied must not make an answer wait: the ingest
//! functions lower their own CPU priority, so the kernel runs a query the moment it is
//! ready, and ingest uses the time left over. Nothing is lost by it: events wait in the
//! stream, and the lag is in every ingest function's status.

/// Lowers this process's CPU priority to `nice` (0 leaves it as it is). Linux keeps the nice
/// value per thread, so every thread that exists now is lowered; threads started later
/// inherit it from the thread that starts them. A failure (a container refusing it, say)
/// is logged and changes nothing else.
pub fn lower_priority(nice: i32) {
    if nice == 0 {
        return;
    }
    let threads = match std::fs::read_dir("/proc/self/task") {
        Ok(dir) => dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<libc::id_t>().ok()).collect(),
        Err(_) => vec![0], // not Linux: the calling process
    };
    for tid in threads {
        // SAFETY: setpriority only reads its integer arguments; an unknown thread id (one
        // that ended meanwhile) makes it return -1 and nothing else.
        let failed = unsafe { libc::setpriority(libc::PRIO_PROCESS, tid, nice) } != 0;
        if failed {
            let e = std::io::Error::last_os_error();
            tracing::warn!(error = %e, nice, "cannot lower the CPU priority (ingest.nice); going on at the current one");
            return;
        }
    }
    tracing::debug!(nice, "CPU priority lowered: queries on this machine go first");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_thread_is_lowered() {
        let other = std::thread::spawn(|| std::thread::sleep(std::time::Duration::from_millis(300)));
        lower_priority(3);
        for entry in std::fs::read_dir("/proc/self/task").unwrap() {
            let stat = std::fs::read_to_string(entry.unwrap().path().join("stat")).unwrap();
            // Field 19 (nice), counted after the parenthesised command name.
            let nice: i32 = stat.rsplit(')').next().unwrap().split_whitespace().nth(16).unwrap().parse().unwrap();
            assert!(nice >= 3, "{stat}");
        }
        other.join().unwrap();
    }
}
