//! End-to-end tests: real nodes on free ports, real SRT callers, real HTTP.

mod admission;
mod api_document;
mod bad_input;
mod cluster;
mod common;
mod demo;
mod ffmpeg;
mod ladder;
mod link;
mod live_slice;
mod netns;
mod operations;
mod placement;
mod protection;
mod reconnect;
mod recording;
mod relay;
mod release;
mod rights;
mod rtmp;
mod speke;
mod takedown;
mod tiers;
mod tokens;
mod vod;
mod vod_ladder;
