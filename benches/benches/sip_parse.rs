//! SIP parse/serialize throughput on a realistic presence mix, with rsip and sipx-sip parsing
//! the same bytes in the same run. See benches/README.md ("SIP") for what each side does.

use std::hint::black_box;
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

const PIDF: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<presence xmlns="urn:ietf:params:xml:ns:pidf" xmlns:dm="urn:ietf:params:xml:ns:pidf:data-model" xmlns:rpid="urn:ietf:params:xml:ns:pidf:rpid" entity="sip:alice@example.com">
<tuple id="t8f3k"><status><basic>open</basic></status><contact priority="0.8">sip:alice@198.51.100.7:5060</contact></tuple>
<dm:person id="p1"><rpid:activities><rpid:on-the-phone/></rpid:activities><dm:note>On a call</dm:note></dm:person>
</presence>
"#;

fn with_body(head: &str, body: &str) -> Vec<u8> {
    format!("{head}Content-Length: {}\r\n\r\n{body}", body.len()).into_bytes()
}

/// REGISTER, PUBLISH (PIDF), SUBSCRIBE, NOTIFY (PIDF), MESSAGE, 200 and 401 — one of each.
fn mix() -> Vec<Vec<u8>> {
    vec![
        with_body(
            "REGISTER sip:example.com SIP/2.0\r\n\
Via: SIP/2.0/UDP 198.51.100.7:5060;branch=z9hG4bK776asdhds;rport\r\n\
Max-Forwards: 70\r\n\
To: \"Alice\" <sip:alice@example.com>\r\n\
From: \"Alice\" <sip:alice@example.com>;tag=1928301774\r\n\
Call-ID: a84b4c76e66710@198.51.100.7\r\n\
CSeq: 2 REGISTER\r\n\
Contact: <sip:alice@198.51.100.7:5060;transport=udp>;expires=3600;q=0.9\r\n\
Authorization: Digest username=\"alice\", realm=\"example.com\", nonce=\"dcd98b7102dd2f0e8b11d0f600bfb0c093\", uri=\"sip:example.com\", response=\"6629fae49393a05397450978507c4ef1\", algorithm=MD5, cnonce=\"0a4f113b\", qop=auth, nc=00000001\r\n\
User-Agent: Softphone/4.2\r\n\
Allow: INVITE, ACK, CANCEL, BYE, OPTIONS, MESSAGE, SUBSCRIBE, NOTIFY, PUBLISH\r\n\
Supported: path, outbound, gruu\r\n",
            "",
        ),
        with_body(
            "PUBLISH sip:alice@example.com SIP/2.0\r\n\
Via: SIP/2.0/TCP 198.51.100.7:5060;branch=z9hG4bK9d8f7a\r\n\
Max-Forwards: 70\r\n\
To: <sip:alice@example.com>\r\n\
From: <sip:alice@example.com>;tag=98asjd8\r\n\
Call-ID: 7d9f8a7sdf@198.51.100.7\r\n\
CSeq: 11 PUBLISH\r\n\
Event: presence\r\n\
Expires: 3600\r\n\
SIP-If-Match: dx200xyz\r\n\
Content-Type: application/pidf+xml\r\n",
            PIDF,
        ),
        with_body(
            "SUBSCRIBE sip:bob@example.com SIP/2.0\r\n\
Via: SIP/2.0/TCP 198.51.100.7:5060;branch=z9hG4bKnashds8\r\n\
Max-Forwards: 70\r\n\
To: \"Bob\" <sip:bob@example.com>\r\n\
From: \"Alice\" <sip:alice@example.com>;tag=xfg9\r\n\
Call-ID: 2010b@198.51.100.7\r\n\
CSeq: 17766 SUBSCRIBE\r\n\
Contact: <sip:alice@198.51.100.7:5060;transport=tcp>\r\n\
Event: presence\r\n\
Accept: application/pidf+xml, application/rpid+xml\r\n\
Expires: 600\r\n",
            "",
        ),
        with_body(
            "NOTIFY sip:alice@198.51.100.7:5060;transport=tcp SIP/2.0\r\n\
Via: SIP/2.0/TCP 203.0.113.1:5060;branch=z9hG4bK4cd42a\r\n\
Max-Forwards: 70\r\n\
To: \"Alice\" <sip:alice@example.com>;tag=xfg9\r\n\
From: \"Bob\" <sip:bob@example.com>;tag=ffd2\r\n\
Call-ID: 2010b@198.51.100.7\r\n\
CSeq: 8775 NOTIFY\r\n\
Contact: <sip:203.0.113.1:5060;transport=tcp>\r\n\
Event: presence\r\n\
Subscription-State: active;expires=599\r\n\
Content-Type: application/pidf+xml\r\n",
            PIDF,
        ),
        with_body(
            "MESSAGE sip:bob@example.com SIP/2.0\r\n\
Via: SIP/2.0/TCP 198.51.100.7:5060;branch=z9hG4bK776sgdkse\r\n\
Max-Forwards: 70\r\n\
From: sip:alice@example.com;tag=49583\r\n\
To: sip:bob@example.com\r\n\
Call-ID: asd88asd77a@198.51.100.7\r\n\
CSeq: 1 MESSAGE\r\n\
Content-Type: text/plain\r\n",
            "Watson, come here.",
        ),
        with_body(
            "SIP/2.0 200 OK\r\n\
Via: SIP/2.0/UDP 198.51.100.7:5060;branch=z9hG4bK776asdhds;rport=5060;received=198.51.100.7\r\n\
To: \"Alice\" <sip:alice@example.com>;tag=2493k59kd\r\n\
From: \"Alice\" <sip:alice@example.com>;tag=1928301774\r\n\
Call-ID: a84b4c76e66710@198.51.100.7\r\n\
CSeq: 2 REGISTER\r\n\
Contact: <sip:alice@198.51.100.7:5060;transport=udp>;expires=3600\r\n\
Date: Sat, 13 Nov 2010 23:29:00 GMT\r\n",
            "",
        ),
        with_body(
            "SIP/2.0 401 Unauthorized\r\n\
Via: SIP/2.0/UDP 198.51.100.7:5060;branch=z9hG4bK776asdhds;rport=5060;received=198.51.100.7\r\n\
To: \"Alice\" <sip:alice@example.com>;tag=2493k59kd\r\n\
From: \"Alice\" <sip:alice@example.com>;tag=1928301774\r\n\
Call-ID: a84b4c76e66710@198.51.100.7\r\n\
CSeq: 1 REGISTER\r\n\
WWW-Authenticate: Digest realm=\"example.com\", qop=\"auth\", nonce=\"ea9c8e88df84f1cec4341ae6cbe5a359\", opaque=\"\", stale=FALSE, algorithm=SHA-256\r\n\
WWW-Authenticate: Digest realm=\"example.com\", qop=\"auth\", nonce=\"ea9c8e88df84f1cec4341ae6cbe5a359\", opaque=\"\", stale=FALSE, algorithm=MD5\r\n",
            "",
        ),
    ]
}

fn bench(c: &mut Criterion) {
    let msgs = mix();
    let total: u64 = msgs.iter().map(|m| m.len() as u64).sum();
    let shared: Vec<Bytes> = msgs.iter().map(|m| Bytes::from(m.clone())).collect();
    let sipx_limits = sipx_sip::Limits::default();
    // Every parser must accept every message, or the comparison is meaningless.
    for m in &msgs {
        let ours = sip_codec::Message::parse(m).expect("sip-codec parses the mix");
        ours.validate().expect("mix is valid");
        rsip::SipMessage::try_from(m.as_slice()).expect("rsip parses the mix");
        sipx_sip::parse_datagram(Bytes::from(m.clone()), &sipx_limits)
            .expect("sipx-sip parses the mix");
    }

    let mut g = c.benchmark_group("sip_parse");
    g.throughput(Throughput::Bytes(total));
    g.bench_function("sip-codec parse", |b| {
        b.iter(|| {
            for m in &msgs {
                black_box(sip_codec::Message::parse(black_box(m)).unwrap());
            }
        })
    });
    g.bench_function("sip-codec parse+validate", |b| {
        b.iter(|| {
            for m in &msgs {
                let msg = sip_codec::Message::parse(black_box(m)).unwrap();
                black_box(msg.validate().is_ok());
            }
        })
    });
    g.bench_function("rsip parse", |b| {
        b.iter(|| {
            for m in &msgs {
                black_box(rsip::SipMessage::try_from(black_box(m.as_slice())).unwrap());
            }
        })
    });
    g.bench_function("sipx-sip parse", |b| {
        b.iter(|| {
            for m in &shared {
                // A refcount bump, not a copy: sipx-sip keeps views into the caller's buffer.
                black_box(sipx_sip::parse_datagram(black_box(m.clone()), &sipx_limits).unwrap());
            }
        })
    });
    g.bench_function("sipx-sip parse+validate", |b| {
        b.iter(|| {
            for m in &shared {
                let msg = sipx_sip::parse_datagram(black_box(m.clone()), &sipx_limits).unwrap();
                black_box(sipx_sip::validate(&msg));
            }
        })
    });
    g.finish();

    let ours: Vec<sip_codec::Message> = msgs
        .iter()
        .map(|m| sip_codec::Message::parse(m).unwrap())
        .collect();
    let theirs: Vec<rsip::SipMessage> = msgs
        .iter()
        .map(|m| rsip::SipMessage::try_from(m.as_slice()).unwrap())
        .collect();
    let sipx: Vec<sipx_sip::Message> = shared
        .iter()
        .map(|m| sipx_sip::parse_datagram(m.clone(), &sipx_limits).unwrap())
        .collect();
    let mut g = c.benchmark_group("sip_serialize");
    g.throughput(Throughput::Bytes(total));
    g.bench_function("sip-codec", |b| {
        let mut out = Vec::with_capacity(8192);
        b.iter(|| {
            out.clear();
            for m in &ours {
                m.write_to(&mut out);
            }
            black_box(out.len())
        })
    });
    g.bench_function("rsip", |b| {
        b.iter(|| {
            for m in &theirs {
                black_box(m.to_string());
            }
        })
    });
    g.bench_function("sipx-sip", |b| {
        let mut out = Vec::with_capacity(8192);
        b.iter(|| {
            out.clear();
            for m in &sipx {
                m.write_to(&mut out);
            }
            black_box(out.len())
        })
    });
    g.finish();
}

/// Best-of-N timings with the parsers interleaved round by round, so that load from other
/// processes on a shared machine hits all of them alike; prints the ratios. Runs under
/// `cargo bench` only (not in `cargo test`'s single-pass mode).
fn interleaved_ratios(_: &mut Criterion) {
    if !std::env::args().any(|a| a == "--bench") || std::env::args().any(|a| a == "--profile-time")
    {
        return;
    }
    let msgs = mix();
    let shared: Vec<Bytes> = msgs.iter().map(|m| Bytes::from(m.clone())).collect();
    let limits = sipx_sip::Limits::default();
    let ours: Vec<sip_codec::Message> = msgs
        .iter()
        .map(|m| sip_codec::Message::parse(m).unwrap())
        .collect();
    let sipx: Vec<sipx_sip::Message> = shared
        .iter()
        .map(|m| sipx_sip::parse_datagram(m.clone(), &limits).unwrap())
        .collect();
    let rsip_msgs: Vec<rsip::SipMessage> = msgs
        .iter()
        .map(|m| rsip::SipMessage::try_from(m.as_slice()).unwrap())
        .collect();
    type Job<'a> = (&'static str, Box<dyn Fn() + 'a>);
    let jobs: Vec<Job<'_>> = vec![
        (
            "sip-codec parse",
            Box::new(|| {
                for m in &msgs {
                    black_box(sip_codec::Message::parse(black_box(m)).unwrap());
                }
            }),
        ),
        (
            "sip-codec parse+validate",
            Box::new(|| {
                for m in &msgs {
                    black_box(
                        sip_codec::Message::parse(black_box(m))
                            .unwrap()
                            .validate()
                            .is_ok(),
                    );
                }
            }),
        ),
        (
            "rsip parse",
            Box::new(|| {
                for m in &msgs {
                    black_box(rsip::SipMessage::try_from(black_box(m.as_slice())).unwrap());
                }
            }),
        ),
        (
            "sipx-sip parse",
            Box::new(|| {
                for m in &shared {
                    black_box(sipx_sip::parse_datagram(black_box(m.clone()), &limits).unwrap());
                }
            }),
        ),
        (
            "sipx-sip parse+validate",
            Box::new(|| {
                for m in &shared {
                    black_box(sipx_sip::validate(
                        &sipx_sip::parse_datagram(black_box(m.clone()), &limits).unwrap(),
                    ));
                }
            }),
        ),
        (
            "sip-codec serialize",
            Box::new(|| {
                let mut out = Vec::with_capacity(8192);
                for m in &ours {
                    m.write_to(&mut out);
                }
                black_box(out);
            }),
        ),
        (
            "rsip serialize",
            Box::new(|| {
                for m in &rsip_msgs {
                    black_box(m.to_string());
                }
            }),
        ),
        (
            "sipx-sip serialize",
            Box::new(|| {
                let mut out = Vec::with_capacity(8192);
                for m in &sipx {
                    m.write_to(&mut out);
                }
                black_box(out);
            }),
        ),
    ];
    let mut best = vec![Duration::MAX; jobs.len()];
    for _ in 0..300 {
        for (k, (_, job)) in jobs.iter().enumerate() {
            let t = Instant::now();
            for _ in 0..10 {
                job();
            }
            best[k] = best[k].min(t.elapsed() / 10);
        }
    }
    let bytes: usize = msgs.iter().map(Vec::len).sum();
    println!(
        "\nInterleaved best-of-300 time per mix of {} messages ({bytes} bytes):",
        msgs.len()
    );
    for (k, (name, _)) in jobs.iter().enumerate() {
        let mib = bytes as f64 / best[k].as_secs_f64() / (1024.0 * 1024.0);
        println!(
            "  {name:<26} {:>8.2} µs  {mib:>8.1} MiB/s",
            best[k].as_secs_f64() * 1e6
        );
    }
    let ratio = |a: usize, b: usize| best[b].as_secs_f64() / best[a].as_secs_f64();
    println!(
        "  parse:            sip-codec is {:.2}x rsip, {:.2}x sipx-sip",
        ratio(0, 2),
        ratio(0, 3)
    );
    println!(
        "  parse+validate:   sip-codec is {:.2}x sipx-sip",
        ratio(1, 4)
    );
    println!(
        "  serialize:        sip-codec is {:.2}x rsip, {:.2}x sipx-sip\n",
        ratio(5, 6),
        ratio(5, 7)
    );
}

fn config() -> Criterion {
    Criterion::default()
        .measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_secs(1))
        .sample_size(30)
}

criterion_group! { name = benches; config = config(); targets = interleaved_ratios, bench }
criterion_main!(benches);
