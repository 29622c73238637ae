//! Writes the seed inputs of every corpus (`cargo run -p tessera-fuzz --example seeds`):
//! well-formed inputs made from the bundled samples and the project's own encoders, the
//! starting points the fuzzer mutates. What the fuzzer finds is kept beside them.

use std::path::Path;

use bytes::Bytes;
use rml_rtmp::sessions::{
    ClientSession, ClientSessionConfig, ClientSessionResult, PublishRequestType, ServerSession, ServerSessionConfig,
    ServerSessionEvent, ServerSessionResult,
};
use rml_rtmp::time::RtmpTimestamp;
use tessera_ingest::ts::TsDemuxer;
use tessera_ingest::{aac, CodecConfig, DemuxEvent, Frame, TrackInfo};
use tessera_raft::{Command, ContentSettings, PlacementRule, Proposal, Protection, StreamSettings, TokenKind};
use tessera_transcode::wire::{encode, FromWorker, ToWorker, WorkerStats};

const TS: &[u8] = include_bytes!("../../samples/sample.ts");
const FLV: &[u8] = include_bytes!("../../samples/sample-rtmp.flv");
const HEVC_TS: &[u8] = include_bytes!("../../samples/tiny-hevc.ts");
const MP4: &[u8] = include_bytes!("../../samples/tiny.mp4");
const MOV: &[u8] = include_bytes!("../../samples/tiny.mov");

fn write(target: &str, name: &str, data: impl AsRef<[u8]>) {
    let dir = tessera_fuzz::replay::corpus_dir(target);
    std::fs::create_dir_all(&dir).expect("corpus folder");
    std::fs::write(dir.join(name), data).expect("seed written");
}

/// FLV file tags: (type, timestamp ms, body).
fn flv_tags(file: &[u8]) -> Vec<(u8, u32, &[u8])> {
    let mut tags = Vec::new();
    let mut at = 9 + 4;
    while at + 11 <= file.len() {
        let kind = file[at];
        let size = u32::from_be_bytes([0, file[at + 1], file[at + 2], file[at + 3]]) as usize;
        let ts = u32::from_be_bytes([file[at + 7], file[at + 4], file[at + 5], file[at + 6]]);
        let Some(body) = file.get(at + 11..at + 11 + size) else { break };
        tags.push((kind, ts, body));
        at += 11 + size + 4;
    }
    tags
}

/// Bytes a publisher sends after the handshake: connect, publish, then the tags.
fn rtmp_session(tags: &[(u8, u32, &[u8])]) -> Vec<u8> {
    let (mut client, initial) = ClientSession::new(ClientSessionConfig::new()).expect("client");
    let (mut server, greeting) = ServerSession::new(ServerSessionConfig::new()).expect("server");
    for g in greeting {
        if let ServerSessionResult::OutboundResponse(p) = g {
            client.handle_input(&p.bytes).expect("client reads the greeting");
        }
    }
    let mut sent = Vec::new();
    let mut to_server: Vec<ClientSessionResult> = initial;
    let mut pump = |client: &mut ClientSession, out: Vec<ClientSessionResult>, sent: &mut Vec<u8>| {
        let mut queue = out;
        while !queue.is_empty() {
            let mut answers = Vec::new();
            for r in std::mem::take(&mut queue) {
                let ClientSessionResult::OutboundResponse(p) = r else { continue };
                sent.extend_from_slice(&p.bytes);
                for s in server.handle_input(&p.bytes).expect("server reads the client") {
                    match s {
                        ServerSessionResult::OutboundResponse(p) => answers.push(p.bytes),
                        ServerSessionResult::RaisedEvent(
                            ServerSessionEvent::ConnectionRequested { request_id, .. }
                            | ServerSessionEvent::PublishStreamRequested { request_id, .. },
                        ) => {
                            for a in server.accept_request(request_id).expect("accepted") {
                                if let ServerSessionResult::OutboundResponse(p) = a {
                                    answers.push(p.bytes);
                                }
                            }
                        }
                        _ => {}
                    }
                }
            }
            for a in answers {
                queue.extend(client.handle_input(&a).expect("client reads the server"));
            }
        }
    };
    pump(&mut client, std::mem::take(&mut to_server), &mut sent);
    let r = client.request_connection("live".into()).expect("connect");
    pump(&mut client, vec![r], &mut sent);
    let r = client.request_publishing("match?token=abc".into(), PublishRequestType::Live).expect("publish");
    pump(&mut client, vec![r], &mut sent);
    for (kind, ts, body) in tags {
        let data = Bytes::copy_from_slice(body);
        let r = match kind {
            8 => client.publish_audio_data(data, RtmpTimestamp::new(*ts), false),
            9 => client.publish_video_data(data, RtmpTimestamp::new(*ts), false),
            _ => continue,
        };
        pump(&mut client, vec![r.expect("media")], &mut sent);
    }
    sent
}

fn main() {
    let events: Vec<DemuxEvent> = TsDemuxer::new().push(TS).into_iter().filter_map(Result::ok).collect();
    let tracks: Vec<TrackInfo> =
        events.iter().filter_map(|e| if let DemuxEvent::Track(t) = e { Some(t.clone()) } else { None }).collect();
    let frames: Vec<&Frame> =
        events.iter().filter_map(|e| if let DemuxEvent::Frame(f) = e { Some(f) } else { None }).collect();

    for (first, len) in [(0u8, 188 * 40), (3, 188 * 200), (63, 188 * 7)] {
        write("mpeg_ts", &format!("sample-{len}-split{first}"), [&[first][..], &TS[..len]].concat());
    }

    let tags = flv_tags(FLV);
    let mut flv = Vec::new();
    for (kind, ts, body) in tags.iter().take(24) {
        let body = &body[..body.len().min(u16::MAX as usize)];
        flv.push(if *kind == 9 { 1 } else { 0 });
        flv.extend_from_slice(&ts.to_be_bytes());
        flv.extend_from_slice(&(body.len() as u16).to_be_bytes());
        flv.extend_from_slice(body);
    }
    write("flv", "sample-tags", &flv);
    let media: Vec<_> = tags.iter().filter(|t| t.0 == 8 || t.0 == 9).take(12).copied().collect();
    write("rtmp", "publish-sample", [&[7u8][..], &rtmp_session(&media)].concat());
    write("rtmp", "publish-sample-bytewise", [&[0u8][..], &rtmp_session(&media[..4])].concat());

    for t in &tracks {
        match &t.codec {
            CodecConfig::H264(c) => {
                let pps = c.pps.first().cloned().unwrap_or_default();
                write("h264", "sps-pps", [&[c.sps.len() as u8][..], &c.sps, &pps].concat());
                write("h264", "avcc", tessera_ingest::h264::avcc_record(c));
            }
            CodecConfig::Aac(c) => {
                write("aac", "asc", &c.asc);
                let mut adts = Vec::new();
                for f in frames.iter().filter(|f| f.track == t.id).take(3) {
                    adts.extend_from_slice(&aac::adts_header(c, f.data.len()));
                    adts.extend_from_slice(&f.data);
                }
                write("aac", "adts-3", adts);
            }
            CodecConfig::Hevc(_) => {}
        }
    }
    write("mpeg_ts", "tiny-hevc-split5", [&[5u8][..], HEVC_TS].concat());
    for e in TsDemuxer::new().push(HEVC_TS).into_iter().filter_map(Result::ok) {
        if let DemuxEvent::Track(TrackInfo { codec: CodecConfig::Hevc(c), .. }) = e {
            let pps = c.pps.first().cloned().unwrap_or_default();
            write("hevc", "vps-sps-pps", [&[c.vps.len() as u8, c.sps.len() as u8][..], &c.vps, &c.sps, &pps].concat());
        }
    }
    if let Some(f) = frames.iter().find(|f| f.keyframe && f.kind == tessera_ingest::TrackKind::Video) {
        write("h264", "access-unit", annex_b(&f.data[..f.data.len().min(4096)]));
    }
    write("mp4", "tiny-faststart.mp4", MP4);
    write("mp4", "tiny.mov", MOV);

    for (name, id) in [
        ("bare", "match"),
        ("access-control", "#!::r=live/match,m=publish,u=studio,t=abc"),
        ("request", "#!::m=request,r=match"),
    ] {
        write("srt_streamid", name, id);
    }
    for (name, path) in [
        ("playlist-blocking", "live/match/720p/index.m3u8?_HLS_msn=12&_HLS_part=3&_HLS_skip=YES&token=x"),
        ("part", "live/match/720p/part-1234.m4s"),
        ("protected-init", "live/match/720p/init-3-0123456789abcdef0123456789abcdef.mp4"),
        ("segment", "vod/film/480p/seg-7.m4s?sig=abc"),
    ] {
        write("media_request", name, path);
    }
    write("tus_headers", "create-and-patch", "1048576\nfilename ZmlsbS5tcDQ=,title RmlsbQ==,keep_source\nsha256 47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=");
    write("tus_headers", "sha1", "0\nsha256 YTNiNGM3ZjQ0ZjQ4ZmQ3ZmU2YjM2ZTlmZDk1ZGI0MjFiYjYxMzFlZGMxNmYwNGRiOTI1OTRhYjg1YjY0ZGQ5Zg==\nsha1 2jmj7l5rSw0yVb/vlWAYkK/YBwk=");
    write(
        "playback_token",
        "claims",
        r#"{"sub":"viewer-7","content":"live/match","exp":1900000000,"iat":1700000000,"regions":["eu"],"max_streams":2}"#,
    );
    write("playback_token", "claims-wildcard", r#"{"sub":"v","content":"live/*","exp":1900000000,"nbf":1700000000}"#);
    write(
        "playback_token",
        "jwks",
        r#"{"keys":[{"kty":"EC","crv":"P-256","kid":"e1","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"},{"kty":"oct","kid":"h","k":"YWJj"}]}"#,
    );

    let start = tessera_transcode::wire::StartJob {
        stream: "match".into(),
        codec: tessera_transcode::wire::SourceCodec::H264,
        extradata: vec![1, 0x64, 0, 0x1f, 0xff],
        width: 1280,
        height: 720,
        fps: Some((30, 1)),
        rungs: Vec::new(),
        tuning: tessera_transcode::wire::EncoderTuning::default(),
        stats_interval_ms: 1000,
    };
    let mut to_worker = encode(&ToWorker::Start(start), &[]);
    to_worker
        .extend(encode(&ToWorker::Frame { pts: 3003, dts: 0, keyframe: true, boundary: Some(0) }, &[0, 0, 0, 1, 0x65]));
    to_worker.extend(encode(&ToWorker::DropRung(1), &[]));
    to_worker.extend(encode(&ToWorker::Stop, &[]));
    write("codec_worker_wire", "to-worker", [&[9u8][..], &to_worker].concat());
    let mut from_worker = encode(&FromWorker::Ready { ffmpeg: "7.1".into() }, &[]);
    from_worker.extend(encode(
        &FromWorker::Packet { rung: 0, pts: 3003, dts: 0, keyframe: true, boundary: Some(0) },
        &[1; 64],
    ));
    from_worker.extend(encode(&FromWorker::Stats(WorkerStats::default()), &[]));
    from_worker.extend(encode(&FromWorker::Skipped { dts: 3003, error: "bad slice".into() }, &[]));
    write("codec_worker_wire", "from-worker", [&[2u8][..], &from_worker].concat());

    let opening = |name: &str, request: Vec<u8>| {
        let mut header = postcard::to_allocvec(name).expect("name");
        header.extend(request);
        [&(header.len() as u32).to_be_bytes()[..], &0u32.to_be_bytes(), &header].concat()
    };
    let put = Command::PutStream {
        name: "match".into(),
        ladder: Some("source".into()),
        token_sha256: None,
        create_only: true,
    };
    let forwarded = tessera_cluster::membership::Forwarded::Propose(put.clone());
    write(
        "cluster_wire",
        "forward-put-stream",
        opening("catalog.forward", postcard::to_allocvec(&forwarded).expect("forward")),
    );
    let join = tessera_cluster::membership::JoinRequest {
        secret: "join".into(),
        cluster_addr: "10.0.0.2:7000".into(),
        http_addr: "10.0.0.2:8080".into(),
    };
    write("cluster_wire", "join", opening("cluster.join", postcard::to_allocvec(&join).expect("join")));
    let feed = tessera_relay::FeedFrame {
        journal: 7,
        head: 3,
        items: vec![
            tessera_relay::FeedItem { seq: 1, event: tessera_relay::FeedEvent::Reset { kept_from: 1 } },
            tessera_relay::FeedItem {
                seq: 2,
                event: tessera_relay::FeedEvent::Session { session: 1, base: 0, expects_ladder: false },
            },
            tessera_relay::FeedItem {
                seq: 3,
                event: tessera_relay::FeedEvent::Init {
                    rendition: "source".into(),
                    tracks: tracks.clone(),
                    data: Bytes::from_static(b"ftyp"),
                },
            },
        ],
    };
    let (header, body) = tessera_relay::frame::encode(feed).expect("frame");
    let body: Vec<u8> = body.concat();
    write(
        "cluster_wire",
        "relay-frame",
        [&(header.len() as u32).to_be_bytes()[..], &(body.len() as u32).to_be_bytes(), &header, &body].concat(),
    );

    let at = |at_ms: i64, command: Command| Proposal { at_ms, command };
    let streams = vec![
        at(1, put),
        at(2, Command::AcquireOrigin { stream: "match".into(), node: 1 }),
        at(3, Command::PlaceLadder { stream: "match".into(), origin_epoch: 1, node: 2 }),
        at(4, Command::ReleaseOrigin { stream: "match".into(), node: 1, epoch: 1 }),
        at(5, Command::AcquireOrigin { stream: "match".into(), node: 2 }),
        at(6, Command::DeleteStream { name: "match".into() }),
        at(7, Command::SetDraining { node: 2, draining: true }),
    ];
    write("catalog_json", "streams", serde_json::to_vec_pretty(&streams).expect("json"));
    let content = vec![
        at(1, Command::AddToken { kind: TokenKind::Admin, sha256: "ab".repeat(32) }),
        at(
            2,
            Command::ScheduleRelease {
                content: "live/match".into(),
                at_ms: 10_000,
                end_ms: Some(20_000),
                regions: vec!["eu".into()],
            },
        ),
        at(3, Command::SetRegionTable { lines: vec!["10.0.0.0/8=eu".into(), "2001:db8::/32=us".into()] }),
        at(4, Command::SetRights { content: "live/match".into(), regions: vec!["eu".into()] }),
        at(5, Command::SetProtection { content: "live/match".into(), mode: Protection::Cbcs }),
        at(
            6,
            Command::ConfigureContent {
                content: "live/match".into(),
                settings: ContentSettings {
                    stream: Some(StreamSettings { ladder: Some("source".into()), token_sha256: None }),
                    record: Some(true),
                    placement: Some(PlacementRule { pin: vec![2], prefer: vec![] }),
                    encryption: Some(Protection::Cbcs),
                    regions: Some(vec!["eu".into()]),
                    signed_urls: Some(true),
                    key_server: None,
                },
            },
        ),
        at(7, Command::RevokeSubject { subject: "viewer-7".into(), revoked: true }),
    ];
    write("catalog_json", "content", serde_json::to_vec_pretty(&content).expect("json"));
    let jobs = vec![
        at(
            1,
            Command::AddJobs {
                asset: "film".into(),
                jobs: vec![("720p".into(), "h264:1280x720@2500".into())],
                segments_total: 10,
            },
        ),
        at(2, Command::ClaimJob { asset: "film".into(), rendition: "720p".into(), node: 1, lease_ms: 5_000 }),
        at(
            3,
            Command::RenewJob {
                asset: "film".into(),
                rendition: "720p".into(),
                node: 1,
                epoch: 1,
                lease_ms: 5_000,
                segments_done: 4,
            },
        ),
        at(
            4,
            Command::FailJob {
                asset: "film".into(),
                rendition: "720p".into(),
                node: 1,
                epoch: 1,
                error: "codec".into(),
            },
        ),
        at(5, Command::RetryJob { asset: "film".into(), rendition: "720p".into() }),
        at(6, Command::FinishJob { asset: "film".into(), rendition: "720p".into(), node: 1, epoch: 2 }),
    ];
    write("catalog_json", "jobs", serde_json::to_vec_pretty(&jobs).expect("json"));

    eprintln!("seeds written to {}", Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus").display());
}

/// Four-byte length-prefixed NAL units as Annex B.
fn annex_b(mut sample: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while sample.len() >= 4 {
        let len = (u32::from_be_bytes([sample[0], sample[1], sample[2], sample[3]]) as usize).min(sample.len() - 4);
        out.extend_from_slice(&[0, 0, 0, 1]);
        out.extend_from_slice(&sample[4..4 + len]);
        sample = &sample[4 + len..];
    }
    out
}
