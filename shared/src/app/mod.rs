//! Use cases: what each function does, written against the ports.

pub mod backfill;
pub mod board_to_hubspot;
pub mod budget;
pub mod budget_view;
pub mod budgeted_board;
pub mod budgeted_hubspot;
pub mod card;
pub mod catch_up;
pub mod connect;
pub mod connection_status;
pub mod diagnosis;
pub mod directory;
pub mod disconnect;
pub mod drafts;
pub mod failure;
pub mod history;
pub mod history_tools;
pub mod hubspot_to_board;
pub mod jobs;
pub mod lifecycle;
pub mod links;
pub mod matching;
pub mod register;
pub mod services;
pub mod settings;
pub mod tokens;
pub mod webhook;
pub mod worker;

pub use services::Services;
