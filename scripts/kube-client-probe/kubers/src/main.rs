// kube-rs + k8s-openapi: the typed Api<Node>.
use k8s_openapi::api::core::v1::Node;
use kube::{api::ListParams, Api, Client, Config};

fn hwm() -> String {
    std::fs::read_to_string("/proc/self/status").unwrap_or_default().lines().filter(|l| l.starts_with("VmHWM") || l.starts_with("VmRSS")).collect::<Vec<_>>().join(" ")
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let url: http::Uri = std::env::var("KUBE_URL")?.parse()?;
    let client = Client::try_from(Config::new(url))?;
    let nodes: Api<Node> = Api::all(client);
    let list = nodes.list(&ListParams::default()).await?;
    let with_cidr = list.items.iter().filter(|n| n.spec.as_ref().is_some_and(|s| s.pod_cidr.is_some() || s.pod_cidrs.is_some())).count();
    let ann: usize = list.items.iter().map(|n| n.metadata.annotations.as_ref().map_or(0, |a| a.len())).sum();
    println!("kube-rs: {} nodes ({} with podCIDR, {} annotations, rv {:?}, first {:?}) {}", list.items.len(), with_cidr, ann, list.metadata.resource_version, list.items.first().map(|n| (&n.metadata.name, &n.metadata.resource_version)), hwm());
    Ok(())
}
