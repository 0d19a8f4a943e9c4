//! The kubelet's image credential providers (`--image-credential-provider-config`, KEP-2133;
//! `pkg/credentialprovider/plugin`): which images a node's providers cover.
//!
//! The file is the kubelet's own `CredentialProviderConfig` (`kubelet.config.k8s.io/v1`, `v1beta1` or `v1alpha1`),
//! YAML or JSON, checked as the kubelet's `validateCredentialProviderConfig` checks it, so a file the kubelet refuses
//! is refused here too. Only what decides coverage is kept: each provider's `name` and `matchImages`. The kubelet
//! calls a provider for an image when one of its `matchImages` matches the image's lookup name with
//! `URLsMatchStr` — the very function keyring keys are matched with ([`keyring::urls_match_str`], here through its
//! parsed form [`UrlPattern`], parsed once when the file is read), applied to the entry as written (the kubelet does
//! not normalize `matchImages` as it normalizes config keys).

use serde::Deserialize;

use crate::kubelet::go_url;
use crate::kubelet::keyring::{LookupTarget, UrlPattern};

/// The configuration file's `apiVersion`s the kubelet decodes.
pub const CONFIG_API_VERSIONS: [&str; 3] =
    ["kubelet.config.k8s.io/v1", "kubelet.config.k8s.io/v1beta1", "kubelet.config.k8s.io/v1alpha1"];
/// The `apiVersion`s of the exec protocol a provider may speak (`providers[].apiVersion`).
pub const PROVIDER_API_VERSIONS: [&str; 3] = [
    "credentialprovider.kubelet.k8s.io/v1",
    "credentialprovider.kubelet.k8s.io/v1beta1",
    "credentialprovider.kubelet.k8s.io/v1alpha1",
];
/// A configuration file larger than this is refused (real ones are a few hundred bytes).
pub const MAX_CONFIG_BYTES: usize = 1024 * 1024;

/// One provider: its name (the plugin binary) and the images it is called for.
#[derive(Debug, Clone)]
pub struct Provider {
    pub name: String,
    /// Its `matchImages`, parsed once: the admission path matches each image against them.
    patterns: Vec<UrlPattern>,
}

/// A node's providers, in the file's order (the kubelet combines their credentials in that order).
#[derive(Debug, Clone, Default)]
pub struct NodeProviders {
    providers: Vec<Provider>,
}

/// The file as written; unknown fields (`args`, `env`, `tokenAttributes`...) are ignored.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawConfig {
    api_version: Option<String>,
    kind: Option<String>,
    providers: Option<Vec<RawProvider>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawProvider {
    name: Option<String>,
    match_images: Option<Vec<String>>,
    default_cache_duration: Option<String>,
    api_version: Option<String>,
}

impl NodeProviders {
    /// Parses and validates a `CredentialProviderConfig` (YAML or JSON). The error lists every problem, with the
    /// field's path as the kubelet names it (`providers[0].matchImages[1]`).
    pub fn parse(text: &str) -> Result<Self, String> {
        if text.len() > MAX_CONFIG_BYTES {
            return Err(format!("larger than {MAX_CONFIG_BYTES} bytes"));
        }
        let raw: RawConfig =
            serde_yaml_ng::from_str(text).map_err(|e| format!("not a CredentialProviderConfig: {e}"))?;
        let mut errors = Vec::new();
        match raw.api_version.as_deref() {
            Some(v) if CONFIG_API_VERSIONS.contains(&v) => {}
            Some(v) => errors.push(format!("apiVersion {v:?} is not one of {}", CONFIG_API_VERSIONS.join(", "))),
            None => errors.push("apiVersion is required".into()),
        }
        if raw.kind.as_deref() != Some("CredentialProviderConfig") {
            errors.push("kind must be CredentialProviderConfig".into());
        }
        let raw_providers = raw.providers.unwrap_or_default();
        if raw_providers.is_empty() {
            errors.push("providers: at least 1 item is required".into());
        }
        let mut providers: Vec<Provider> = Vec::with_capacity(raw_providers.len());
        for (i, p) in raw_providers.into_iter().enumerate() {
            let at = format!("providers[{i}]");
            let name = p.name.unwrap_or_default();
            if name.is_empty() {
                errors.push(format!("{at}.name is required"));
            } else if name.contains('/') || name.contains(' ') || name == "." || name == ".." {
                errors.push(format!("{at}.name {name:?}: a plugin file name (no '/', no space, not . or ..)"));
            } else if providers.iter().any(|seen| seen.name == name) {
                errors.push(format!("{at}.name {name:?} is a duplicate"));
            }
            match p.api_version.as_deref() {
                Some(v) if PROVIDER_API_VERSIONS.contains(&v) => {}
                Some(v) => {
                    errors.push(format!("{at}.apiVersion {v:?} is not one of {}", PROVIDER_API_VERSIONS.join(", ")))
                }
                None => errors.push(format!("{at}.apiVersion is required")),
            }
            // A Go duration string; the kubelet refuses a missing or negative one (the value is not used here).
            match p.default_cache_duration.as_deref() {
                None => errors.push(format!("{at}.defaultCacheDuration is required")),
                Some(d) if d.starts_with('-') => errors.push(format!("{at}.defaultCacheDuration must be >= 0")),
                Some(_) => {}
            }
            let match_images = p.match_images.unwrap_or_default();
            if match_images.is_empty() {
                errors.push(format!("{at}.matchImages: at least 1 item is required"));
            }
            for (j, image) in match_images.iter().enumerate() {
                // The kubelet's check: `ParseSchemelessURL`, i.e. `url.Parse("https://" + entry)`.
                if let Err(e) = go_url::parse(&format!("https://{image}")) {
                    errors.push(format!("{at}.matchImages[{j}] {image:?} is invalid: {e}"));
                }
            }
            let patterns = match_images.iter().map(|m| UrlPattern::parse(m)).collect();
            providers.push(Provider { name, patterns });
        }
        if errors.is_empty() { Ok(Self { providers }) } else { Err(errors.join("; ")) }
    }

    pub fn is_empty(&self) -> bool {
        self.providers.is_empty()
    }

    pub fn providers(&self) -> &[Provider] {
        &self.providers
    }

    /// The providers the kubelet calls for an image whose lookup name is `target` (`ImageRef::name()`, parsed), in
    /// the file's order: those with a `matchImages` entry that `URLsMatchStr` matches (the kubelet's
    /// `isImageAllowed`).
    pub fn matching<'a>(&'a self, target: &'a LookupTarget) -> impl Iterator<Item = &'a str> + 'a {
        self.providers.iter().filter(move |p| p.patterns.iter().any(|m| m.matches(target))).map(|p| p.name.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ECR: &str = r#"
apiVersion: kubelet.config.k8s.io/v1
kind: CredentialProviderConfig
providers:
  - name: ecr-credential-provider
    matchImages:
      - "*.dkr.ecr.*.amazonaws.com"
      - "*.dkr.ecr.*.amazonaws.com.cn"
    defaultCacheDuration: "12h"
    apiVersion: credentialprovider.kubelet.k8s.io/v1
    args: [get-credentials]
    env: [{name: AWS_PROFILE, value: x}]
  - name: gcr
    matchImages: ["gcr.io", "*.pkg.dev", "registry.example.com:5000/team"]
    defaultCacheDuration: 0s
    apiVersion: credentialprovider.kubelet.k8s.io/v1beta1
"#;

    /// (image lookup name, providers the kubelet calls, in order)
    #[test]
    fn match_images_match_like_keyring_keys() {
        let node = NodeProviders::parse(ECR).unwrap();
        let cases: &[(&str, &[&str])] = &[
            ("123456789012.dkr.ecr.us-east-1.amazonaws.com/app", &["ecr-credential-provider"]),
            ("123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn/app", &["ecr-credential-provider"]),
            ("a.b.dkr.ecr.us-east-1.amazonaws.com/app", &[]), // a glob matches one label
            ("gcr.io/project/app", &["gcr"]),
            ("eu.gcr.io/project/app", &[]), // label count differs
            ("europe-docker.pkg.dev/p/r/app", &["gcr"]),
            ("registry.example.com:5000/team2/app", &["gcr"]), // path is a string prefix (M112)
            ("registry.example.com:5000/other/app", &[]),
            ("registry.example.com/team/app", &[]), // ports compared verbatim
            ("docker.io/library/nginx", &[]),
        ];
        for (target, want) in cases {
            let lookup = LookupTarget::new(target);
            let got: Vec<&str> = node.matching(&lookup).collect();
            assert_eq!(&got, want, "{target}");
        }
    }

    #[test]
    fn json_and_every_kubelet_api_version_are_accepted() {
        for version in CONFIG_API_VERSIONS {
            let json = format!(
                r#"{{"apiVersion":"{version}","kind":"CredentialProviderConfig","providers":[{{"name":"p",
                "matchImages":["*.example.com"],"defaultCacheDuration":"1m",
                "apiVersion":"credentialprovider.kubelet.k8s.io/v1alpha1"}}]}}"#
            );
            let node = NodeProviders::parse(&json).unwrap_or_else(|e| panic!("{version}: {e}"));
            assert_eq!(node.matching(&LookupTarget::new("r.example.com/app")).collect::<Vec<_>>(), ["p"]);
        }
    }

    /// (case, file, a piece of the error)
    #[test]
    fn files_the_kubelet_refuses_are_refused() {
        let provider = |fields: &str| {
            format!(
                "apiVersion: kubelet.config.k8s.io/v1\nkind: CredentialProviderConfig\nproviders:\n- {}\n",
                fields.replace('\n', "\n  ")
            )
        };
        let ok =
            "name: p\nmatchImages: [r.io]\ndefaultCacheDuration: 1h\napiVersion: credentialprovider.kubelet.k8s.io/v1";
        assert!(NodeProviders::parse(&provider(ok)).is_ok());
        let cases: Vec<(&str, String, &str)> = vec![
            ("not YAML", "{[".into(), "not a CredentialProviderConfig"),
            ("a list", "[1, 2]".into(), "not a CredentialProviderConfig"),
            ("empty", "".into(), "apiVersion is required"),
            ("wrong kind", provider(ok).replace("kind: CredentialProviderConfig", "kind: Pod"), "kind"),
            ("wrong version", provider(ok).replace("kubelet.config.k8s.io/v1\n", "v1\n"), "apiVersion \"v1\""),
            (
                "no providers",
                "apiVersion: kubelet.config.k8s.io/v1\nkind: CredentialProviderConfig\nproviders: []".into(),
                "at least 1",
            ),
            (
                "no matchImages",
                provider(&ok.replace("matchImages: [r.io]", "matchImages: []")),
                "matchImages: at least",
            ),
            ("bad matchImage", provider(&ok.replace("[r.io]", "['r.io%zz']")), "matchImages[0]"),
            ("no name", provider(&ok.replace("name: p\n", "")), "name is required"),
            ("name with /", provider(&ok.replace("name: p", "name: a/b")), "plugin file name"),
            ("no cache duration", provider(&ok.replace("defaultCacheDuration: 1h\n", "")), "defaultCacheDuration"),
            ("negative cache duration", provider(&ok.replace("1h", "-1h")), ">= 0"),
            (
                "plugin apiVersion",
                provider(&ok.replace("credentialprovider.kubelet.k8s.io/v1", "v2")),
                "apiVersion \"v2\"",
            ),
            ("matchImages not a list", provider(&ok.replace("[r.io]", "r.io")), "not a CredentialProviderConfig"),
            ("too large", format!("# {}", "x".repeat(MAX_CONFIG_BYTES)), "larger than"),
        ];
        for (case, text, want) in cases {
            let err = NodeProviders::parse(&text).expect_err(case);
            assert!(err.contains(want), "{case}: {err}");
        }
        let two = format!("{}{}", provider(ok), provider(ok).split_once("providers:\n").unwrap().1);
        assert!(NodeProviders::parse(&two).unwrap_err().contains("duplicate"));
    }
}
