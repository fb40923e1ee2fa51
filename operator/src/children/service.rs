//! The coordinator Service (the workers' and the operator's way to the coordinator: rpc 6123,
//! control API 8081) and the workers' headless Service (stable per-pod DNS names for the data
//! exchange, published before the pods are ready so workers can find each other while starting).

use k8s_openapi::api::core::v1::{Service, ServicePort, ServiceSpec};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::{API_PORT, Component, DATA_PORT, Names, Owner, RPC_PORT, metadata, selector_labels};

fn port(name: &str, number: i32) -> ServicePort {
    ServicePort {
        name: Some(name.to_owned()),
        port: number,
        target_port: Some(IntOrString::Int(number)),
        protocol: Some("TCP".to_owned()),
        ..ServicePort::default()
    }
}

/// The coordinator's ClusterIP Service.
pub fn coordinator(owner: &Owner) -> Service {
    let name = Names::of(&owner.name).coordinator;
    Service {
        metadata: metadata(owner, &name, Component::Coordinator),
        spec: Some(ServiceSpec {
            selector: Some(selector_labels(&owner.name, Component::Coordinator)),
            ports: Some(vec![port("rpc", RPC_PORT), port("api", API_PORT)]),
            ..ServiceSpec::default()
        }),
        status: None,
    }
}

/// The workers' headless Service.
pub fn workers(owner: &Owner) -> Service {
    let name = Names::of(&owner.name).workers;
    Service {
        metadata: metadata(owner, &name, Component::Workers),
        spec: Some(ServiceSpec {
            cluster_ip: Some("None".to_owned()),
            selector: Some(selector_labels(&owner.name, Component::Workers)),
            ports: Some(vec![port("data", DATA_PORT)]),
            publish_not_ready_addresses: Some(true),
            ..ServiceSpec::default()
        }),
        status: None,
    }
}
