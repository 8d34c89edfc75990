//! The plugin skeleton itself (`weft_cni_core::run`): environment validation, stdin,
//! version gating and dispatch, with a plugin that does what real ones do with their input
//! (parse the config, CNI_ARGS and prevResult, print a result at the config's version).
//!
//! Input: `CNI_COMMAND\0CNI_CONTAINERID\0CNI_NETNS\0CNI_IFNAME\0CNI_ARGS\0CNI_PATH\0`
//! `CNI_NETNS_OVERRIDE\0stdin`; a missing field is an unset variable. The outcome must be
//! exit 0, or exit 1 with a CNI error object (last) on stdout.

#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use weft_cni_core::{
    parse_cni_args, parse_netconf, run, CmdArgs, CniError, CniResult, Plugin, Result,
};
use weft_fuzz::{field, has_field, text};

const VARS: [&str; 7] = [
    "CNI_COMMAND",
    "CNI_CONTAINERID",
    "CNI_NETNS",
    "CNI_IFNAME",
    "CNI_ARGS",
    "CNI_PATH",
    "CNI_NETNS_OVERRIDE",
];

struct Echo;

impl Echo {
    fn read(&self, args: &CmdArgs) -> Result<Option<CniResult>> {
        let conf = parse_netconf(&args.stdin)?;
        parse_cni_args(&args.args, &["IP", "MAC"])?;
        let _ = conf.valid_attachments()?;
        conf.parsed_prev_result()
    }
}

impl Plugin for Echo {
    fn add(&self, args: &CmdArgs) -> Result<Value> {
        let conf = parse_netconf(&args.stdin)?;
        match self.read(args)? {
            Some(prev) => prev.to_value(conf.version()),
            None => Err(CniError::InvalidConfig("no prevResult".into())),
        }
    }
    fn del(&self, args: &CmdArgs) -> Result<()> {
        self.read(args).map(drop)
    }
    fn check(&self, args: &CmdArgs) -> Result<()> {
        self.read(args).map(drop)
    }
    fn gc(&self, args: &CmdArgs) -> Result<()> {
        self.read(args).map(drop)
    }
}

fuzz_target!(|data: &[u8]| {
    let env: Vec<Option<String>> = (0..VARS.len())
        .map(|i| has_field(data, i).then(|| text(data, i)))
        .collect();
    let getenv = |k: &str| {
        VARS.iter()
            .position(|v| *v == k)
            .and_then(|i| env.get(i).cloned().flatten())
    };
    // Everything after the seventh NUL is stdin, NULs included.
    let stdin = match data
        .iter()
        .enumerate()
        .filter(|(_, b)| **b == 0)
        .nth(VARS.len() - 1)
    {
        Some((pos, _)) => &data[pos + 1..],
        None => field(data, VARS.len()),
    };
    let mut reader = stdin;
    let out = run(&Echo, &getenv, &mut reader, "CNI fuzz plugin");
    // Like Go's skel, an ADD whose netns turns out to be the plugin's own prints the result
    // and then the error: stdout is a sequence of JSON documents, the error last.
    let docs: Vec<Value> = serde_json::Deserializer::from_slice(&out.stdout)
        .into_iter::<Value>()
        .collect::<std::result::Result<_, _>>()
        .expect("stdout is JSON");
    match out.exit_code {
        0 => assert!(docs.len() <= 1, "{}", out.stdout_str()),
        1 => {
            let err = docs.last().expect("an error on stdout");
            assert!(err.get("code").and_then(Value::as_u64).is_some(), "{err}");
            assert!(err.get("msg").and_then(Value::as_str).is_some(), "{err}");
        }
        code => panic!("exit code {code}"),
    }
});
