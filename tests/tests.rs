//! End-to-end tests against real parts, in one test binary (faster to
//! link than one binary per file).

// A panic in a test is a failed test, not a crash.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod after_sales;
mod after_sales_calendar;
mod alerts;
mod api;
mod crash;
mod demo;
mod edge;
mod edge_crash;
mod edge_memory;
mod imports;
mod influx;
mod layering;
mod limits;
mod modbus;
mod mqtt;
mod parts;
mod reports;
mod simulate;
mod verification;
mod web;
