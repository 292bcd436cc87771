//! An embedder sees where a scan's time goes: with a `tracing` subscriber
//! installed, a scan of the real Debian test image opens a `scan` span, an
//! `image` span (source, manifest digest, layer count) inside it, one `layer`
//! span per layer (index, digest, size, whether the layer cache answered)
//! under the image even though layers are read on worker threads, one
//! `cataloger` span per cataloger, and a `match` span.

mod common;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Subscriber, subscriber};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::{Layer, Registry};
use trawl::{ImageSource, Scanner};

/// One span as opened, with its fields as finally recorded.
#[derive(Debug, Clone)]
struct Opened {
    name: &'static str,
    parent: Option<&'static str>,
    fields: BTreeMap<String, String>,
}

/// Records every span opened, in order.
#[derive(Clone, Default)]
struct Spans(Arc<Mutex<Vec<Opened>>>);

/// Where a span's record is in [`Spans`].
struct Index(usize);

struct Fields<'a>(&'a mut BTreeMap<String, String>);

impl Visit for Fields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0
            .insert(field.name().to_string(), format!("{value:?}"));
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_string(), value.to_string());
    }
}

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for Spans {
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let mut fields = BTreeMap::new();
        attrs.record(&mut Fields(&mut fields));
        let span = ctx.span(id).expect("a new span is registered");
        let mut spans = self.0.lock().unwrap();
        spans.push(Opened {
            name: attrs.metadata().name(),
            parent: span.parent().map(|p| p.name()),
            fields,
        });
        span.extensions_mut().insert(Index(spans.len() - 1));
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        if let Some(Index(i)) = span.extensions().get::<Index>() {
            values.record(&mut Fields(&mut self.0.lock().unwrap()[*i].fields));
        }
    }
}

fn debian() -> ImageSource {
    format!(
        "oci-dir:{}:bookworm",
        common::images().join("debian/oci").display()
    )
    .parse()
    .unwrap()
}

/// Scans with `scanner` under a subscriber of its own; the spans opened.
fn traced_scan(scanner: &Scanner, source: &ImageSource) -> (trawl::Report, Vec<Opened>) {
    let spans = Spans::default();
    let report = subscriber::with_default(Registry::default().with(spans.clone()), || {
        scanner.scan_blocking(source).unwrap()
    });
    let opened = spans.0.lock().unwrap().clone();
    (report, opened)
}

fn named<'a>(spans: &'a [Opened], name: &str) -> Vec<&'a Opened> {
    spans.iter().filter(|s| s.name == name).collect()
}

#[test]
fn a_scan_shows_its_image_layers_and_catalogers_as_spans() {
    let scanner = Scanner::builder().build().unwrap();
    let source = debian();
    let (report, spans) = traced_scan(&scanner, &source);
    let layers = &report.image.layers;
    assert!(!layers.is_empty(), "the Debian image has layers");

    let [scan] = &named(&spans, "scan")[..] else {
        panic!("one scan span: {spans:?}")
    };
    assert_eq!(scan.fields["source"], source.to_string());

    let [image] = &named(&spans, "image")[..] else {
        panic!("one image span: {spans:?}")
    };
    assert_eq!(image.parent, Some("scan"));
    assert_eq!(image.fields["source"], source.to_string());
    assert_eq!(
        Some(image.fields["digest"].as_str()),
        report.image.manifest_digest.as_deref()
    );
    assert_eq!(image.fields["layers"], layers.len().to_string());

    let layer_spans = named(&spans, "layer");
    assert_eq!(layer_spans.len(), layers.len(), "{layer_spans:?}");
    let mut seen: Vec<(usize, &str)> = layer_spans
        .iter()
        .map(|s| {
            (
                s.fields["index"].parse().unwrap(),
                s.fields["digest"].as_str(),
            )
        })
        .collect();
    seen.sort();
    let expected: Vec<(usize, &str)> = layers.iter().map(String::as_str).enumerate().collect();
    assert_eq!(seen, expected);
    for s in &layer_spans {
        assert_eq!(
            s.parent,
            Some("image"),
            "a worker's span is under the image"
        );
        assert!(s.fields["size"].parse::<u64>().unwrap() > 0, "{s:?}");
        assert_eq!(
            s.fields["cached"], "false",
            "a fresh scanner reads every layer"
        );
    }

    let catalogers: Vec<&str> = named(&spans, "cataloger")
        .iter()
        .map(|s| {
            assert_eq!(s.parent, Some("image"));
            s.fields["name"].as_str()
        })
        .collect();
    assert_eq!(catalogers, report.catalogers);
    assert!(catalogers.contains(&"dpkg"), "{catalogers:?}");

    let [matching] = &named(&spans, "match")[..] else {
        panic!("one match span: {spans:?}")
    };
    assert_eq!(matching.parent, Some("scan"));
    assert_eq!(
        matching.fields["packages"],
        report.packages.len().to_string()
    );

    // The same scanner again: the layer cache answers, and the spans say so.
    let (_, again) = traced_scan(&scanner, &source);
    let cached = named(&again, "layer");
    assert_eq!(cached.len(), layers.len());
    assert!(
        cached.iter().all(|s| s.fields["cached"] == "true"),
        "{cached:?}"
    );
}
