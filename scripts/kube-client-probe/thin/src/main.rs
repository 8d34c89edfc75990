// Thin typed client: reqwest (hyper + rustls/ring) and serde structs for the Node fields flannel reads.
use std::collections::BTreeMap;
use serde::Deserialize;

#[derive(Deserialize, Debug)]
#[serde(rename_all = "camelCase")]
struct Meta { name: String, #[serde(default)] annotations: BTreeMap<String, String>, #[serde(default)] resource_version: String }
#[derive(Deserialize, Debug, Default)]
#[serde(rename_all = "camelCase")]
struct Spec { #[serde(default, rename = "podCIDR")] pod_cidr: Option<String>, #[serde(default, rename = "podCIDRs")] pod_cidrs: Vec<String> }
#[derive(Deserialize, Debug)]
struct Node { metadata: Meta, #[serde(default)] spec: Spec }
#[derive(Deserialize, Debug)]
struct NodeList { metadata: ListMeta, items: Vec<Node> }
#[derive(Deserialize, Debug)]
#[serde(rename_all = "camelCase")]
struct ListMeta { resource_version: String }

fn hwm() -> String {
    std::fs::read_to_string("/proc/self/status").unwrap_or_default().lines().filter(|l| l.starts_with("VmHWM") || l.starts_with("VmRSS")).collect::<Vec<_>>().join(" ")
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let url = std::env::var("KUBE_URL")?;
    let client = reqwest::Client::builder().build()?;
    let list: NodeList = client.get(format!("{url}/api/v1/nodes")).send().await?.error_for_status()?.json().await?;
    let with_cidr = list.items.iter().filter(|n| n.spec.pod_cidr.is_some() || !n.spec.pod_cidrs.is_empty()).count();
    let ann: usize = list.items.iter().map(|n| n.metadata.annotations.len()).sum();
    println!("thin: {} nodes ({} with podCIDR, {} annotations, rv {}, first {:?}) {}", list.items.len(), with_cidr, ann, list.metadata.resource_version, list.items.first().map(|n| (&n.metadata.name, &n.metadata.resource_version)), hwm());
    Ok(())
}
