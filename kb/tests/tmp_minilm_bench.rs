// TEMPORARY, not committed.
use frontdesk_kb::embed::Embedder;
use frontdesk_kb::embed::minilm::MiniLmEmbedder;
use std::time::Instant;

fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    let fields: Vec<&str> = stat.rsplit(')').next().unwrap().split_whitespace().collect();
    let utime: f64 = fields[11].parse().unwrap();
    let stime: f64 = fields[12].parse().unwrap();
    (utime + stime) / 100.0
}

#[test]
fn bench() {
    let dir = std::path::PathBuf::from(std::env::var("HOME").unwrap()).join(".cache/frontdesk/models/all-minilm-l6-v2");
    let n: usize = std::env::var("N").ok().and_then(|v| v.parse().ok()).unwrap_or(32);
    let sizes: Vec<usize> = std::env::var("SIZES").unwrap_or("32".into()).split(',').map(|s| s.parse().unwrap()).collect();
    let base = "To change the email address on your account, open Settings and choose Profile. Enter the new address in the Email field and select Save. We send a confirmation link to the new address; the change takes effect only after you click that link, which expires after 24 hours. If you do not receive the message within a few minutes, check your spam or junk folder, make sure the address is spelled correctly, and ask your mail administrator to allow messages from our domain. Accounts that use single sign-on cannot change their email address here: the address is managed by your identity provider, so contact your IT department instead. If two-factor authentication is enabled, you will be asked for a verification code.";
    let texts: Vec<String> = (0..n).map(|i| format!("{i} {}", &base[..base.len() - (i * 7) % 200])).collect();
    let refs: Vec<&str> = texts.iter().map(|s| s.as_str()).collect();
    for size in sizes {
        let e = MiniLmEmbedder::load(&dir, 256).unwrap().with_sub_batch_size(size);
        let ntok: usize = texts.iter().map(|t| e.count_tokens(t)).sum();
        let c0 = cpu_seconds(); let t0 = Instant::now();
        e.embed_batch(&refs).unwrap();
        let wall = t0.elapsed().as_secs_f64(); let cpu = cpu_seconds() - c0;
        println!("sub_batch {size}: {n} texts ({:.0} tok avg) wall {wall:.2}s cpu {cpu:.2}s -> {:.2}/s wall, {:.2}/cpu-s", ntok as f64 / n as f64, n as f64 / wall, n as f64 / cpu);
    }
}
