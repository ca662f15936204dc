//! Blob store throughput: `put_file`, a streamed read (`open`) and a local copy (`local`)
//! of files of a given size, on the local store or on S3 (`NESTBOX_TEST_S3_*`, as
//! `tests/s3/weed.sh` exports). Run by `bench/blob/run.sh`; prints one JSON line per
//! operation.
//!
//! Usage: blob_bench <local|s3> <size MiB> <files>

use std::time::Instant;

use futures_util::StreamExt;
use nestbox_core::ports::BlobStore;
use nestbox_store::blob::{LocalBlobStore, S3BlobStore, S3Settings};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let usage = "usage: blob_bench <local|s3> <size MiB> <files>";
    let backend = args.get(1).expect(usage).clone();
    let mib: usize = args.get(2).and_then(|a| a.parse().ok()).expect(usage);
    let files: usize = args.get(3).and_then(|a| a.parse().ok()).expect(usage);
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(run(&backend, mib, files));
}

async fn run(backend: &str, mib: usize, files: usize) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store: Box<dyn BlobStore> = match backend {
        "local" => Box::new(LocalBlobStore::new(dir.path().join("data"))),
        "s3" => Box::new(
            S3BlobStore::new(&S3Settings {
                endpoint: Some(std::env::var("NESTBOX_TEST_S3_ENDPOINT").expect("endpoint")),
                bucket: std::env::var("NESTBOX_TEST_S3_BUCKET").expect("bucket"),
                path_style: true,
                prefix: format!("bench-{}", std::process::id()),
                part_size: 8 << 20,
                scratch_dir: dir.path().join("scratch"),
                ..S3Settings::default()
            })
            .expect("s3 store"),
        ),
        other => panic!("unknown backend {other}"),
    };
    let size = mib << 20;
    // Incompressible content, so no layer can cheat.
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let data: Vec<u8> = (0..size)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect();
    let keys: Vec<String> = (0..files)
        .map(|i| format!("analyses/{i}/memory.dmp"))
        .collect();

    // put_file moves its source: write the sources first, outside the timing.
    let sources: Vec<_> = (0..files)
        .map(|i| {
            let p = dir.path().join(format!("src{i}"));
            std::fs::write(&p, &data).expect("write source");
            p
        })
        .collect();
    let t = Instant::now();
    for (key, src) in keys.iter().zip(&sources) {
        store.put_file(key, src).await.expect("put_file");
    }
    report(backend, "put_file", mib, files, t.elapsed().as_secs_f64());

    let t = Instant::now();
    for key in &keys {
        let reader = store.open(key).await.expect("open").expect("exists");
        let mut stream = reader.stream;
        let mut n = 0usize;
        while let Some(chunk) = stream.next().await {
            n += chunk.expect("chunk").len();
        }
        assert_eq!(n, size);
    }
    report(
        backend,
        "open (streamed read)",
        mib,
        files,
        t.elapsed().as_secs_f64(),
    );

    let t = Instant::now();
    for key in &keys {
        let local = store.local(key).await.expect("local").expect("exists");
        assert_eq!(
            std::fs::metadata(&local.path).expect("meta").len() as usize,
            size
        );
    }
    report(
        backend,
        "local (file for analyzers)",
        mib,
        files,
        t.elapsed().as_secs_f64(),
    );

    for i in 0..files {
        store
            .delete_prefix(&format!("analyses/{i}/"))
            .await
            .expect("delete");
    }
}

fn report(backend: &str, op: &str, mib: usize, files: usize, secs: f64) {
    let total = (mib * files) as f64;
    println!(
        "{{\"backend\":\"{backend}\",\"op\":\"{op}\",\"files\":{files},\"mib_each\":{mib},\"seconds\":{secs:.3},\"mib_per_s\":{:.1}}}",
        total / secs
    );
}
