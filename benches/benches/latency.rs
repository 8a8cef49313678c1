//! Publish-to-receive latency of one object, answering three questions:
//!
//! * `model`: what does the track model alone cost, producer to N consumers in memory?
//! * `direct`: publisher session straight to N subscriber sessions over loopback QUIC (no relay)?
//! * `relay`: publisher → in-process moq-relay → N subscribers over loopback QUIC: the relay's share is the
//!   difference from `direct`.
//!
//! Each iteration writes one object and waits until every subscriber has it; the time reported is that wait.
//! Run: `cargo bench -p moq-bench --bench latency`.

use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use moq_bench::Fanout;

fn run(fanout: &mut Fanout, n: usize, payload: &Bytes, iters: u64, rt: &tokio::runtime::Runtime) -> Duration {
    rt.block_on(async {
        let mut total = Duration::ZERO;
        for _ in 0..iters {
            let start = Instant::now();
            fanout.publisher.write(payload.clone());
            for _ in 0..n {
                fanout.received.recv().await.expect("subscribers alive");
            }
            total += start.elapsed();
        }
        total
    })
}

fn latency(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    let mut g = c.benchmark_group("publish_to_receive");
    g.measurement_time(Duration::from_secs(4)).warm_up_time(Duration::from_secs(1)).sample_size(20);
    for size in [100usize, 40_000] {
        let payload = Bytes::from(vec![0x5a; size]);
        for n in [1usize, 10, 100] {
            let label = format!("{n}x{size}B");
            let mut model = rt.block_on(async { moq_bench::in_memory(n) });
            g.bench_function(BenchmarkId::new("model", &label), |b| {
                b.iter_custom(|iters| run(&mut model, n, &payload, iters, &rt))
            });
            let mut direct = rt.block_on(moq_bench::direct(n)).expect("direct set-up");
            g.bench_function(BenchmarkId::new("direct", &label), |b| {
                b.iter_custom(|iters| run(&mut direct, n, &payload, iters, &rt))
            });
            drop(direct);
            let mut relay = rt.block_on(moq_bench::via_relay(n)).expect("relay set-up");
            g.bench_function(BenchmarkId::new("relay", &label), |b| {
                b.iter_custom(|iters| run(&mut relay, n, &payload, iters, &rt))
            });
        }
    }
    g.finish();
}

criterion_group!(benches, latency);
criterion_main!(benches);
