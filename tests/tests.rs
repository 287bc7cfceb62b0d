//! The integration tests: one binary, so the crate links once.
//!
//! Every test talks to real parts: a daemon over HTTP, a real Python interpreter with Scrapy
//! (provisioned under `target/` unless `SCRAPYD_RS_TEST_PYTHON` names one), and real eggs built
//! from `fixtures/projects`.

mod helper;

mod api_eggs;
mod api_errors;
mod browser;
mod cli;
mod clients;
mod crash;
mod differential;
mod instances;
mod jobs;
mod migrate;
mod recovery;
mod runner;
mod scrapydweb;
mod stats;
mod web;
