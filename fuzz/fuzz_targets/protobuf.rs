#![no_main]
//! Binary protobuf from a Backrest client, as the transcoder reads it: never a panic, and
//! what it reads it can write back (strictly: only fields the message defines).
use libfuzzer_sys::fuzz_target;

const MESSAGES: &[&str] = &[
    "v1.GetOperationsRequest",
    "v1.OpSelector",
    "v1.DoRepoTaskRequest",
    "v1.ClearHistoryRequest",
    "v1.LoginRequest",
    "v1.Config",
    "v1.Operation",
    "v1.OperationEvent",
    "v1.SummaryDashboardResponse",
];

fuzz_target!(|data: &[u8]| {
    static SCHEMA: std::sync::OnceLock<steward::api::protobuf::Schema> = std::sync::OnceLock::new();
    let schema = SCHEMA.get_or_init(|| steward::api::protobuf::Schema::parse(include_str!("../../src/api/backrest/schema.txt")));
    let Some((pick, bytes)) = data.split_first() else { return };
    let message = MESSAGES[usize::from(*pick) % MESSAGES.len()];
    if let Ok(json) = schema.decode(message, bytes) {
        schema.encode(message, &json, true).expect("what was read is written back");
    }
});
