//! The routes of the REST API and their OpenAPI 3 document, built from one table: each
//! resource's `routes()` declares a path with its operations ([`get`], [`post`], ...), and
//! [`Routes`] both registers them with axum and documents them with utoipa's model, so a route
//! cannot exist without being documented (`GET /api/schema`).
//!
//! What is documented: path, method, summary, tag, path parameters, whether a JSON body is
//! taken, and the authentication schemes. Request and response fields are Label Studio's
//! (`shared/reference/ls-storage-api.md`) and are not spelt out as schemas here.

use std::sync::Arc;

use axum::Router;
use axum::handler::Handler;
use axum::routing::MethodRouter;
use utoipa::openapi::path::{HttpMethod, OperationBuilder, ParameterBuilder, ParameterIn, PathItem};
use utoipa::openapi::request_body::RequestBodyBuilder;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{
    ComponentsBuilder, ContentBuilder, InfoBuilder, OpenApi, OpenApiBuilder, PathsBuilder, Required, ResponseBuilder,
    Type,
};

use crate::App;

/// One operation of a path: its method, what it does, and its handler.
pub struct Op {
    method: HttpMethod,
    summary: &'static str,
    /// Media type of the request body, if the operation takes one.
    body: Option<&'static str>,
    /// Answered without authentication.
    open: bool,
    route: MethodRouter<Arc<App>>,
}

macro_rules! op {
    ($(#[$doc:meta])* $name:ident, $method:ident, $body:expr) => {
        $(#[$doc])*
        pub fn $name<H: Handler<T, Arc<App>>, T: 'static>(summary: &'static str, handler: H) -> Op {
            Op { method: HttpMethod::$method, summary, body: $body, open: false, route: axum::routing::$name(handler) }
        }
    };
}

op!(
    /// A `GET` operation.
    get, Get, None
);
op!(
    /// A `POST` operation taking a JSON body.
    post, Post, Some("application/json")
);
op!(
    /// A `PATCH` operation taking a JSON body.
    patch, Patch, Some("application/json")
);
op!(
    /// A `PUT` operation taking a JSON body.
    put, Put, Some("application/json")
);
op!(
    /// A `DELETE` operation.
    delete, Delete, None
);

impl Op {
    /// The operation takes a body of this media type (or none).
    pub fn body(mut self, media_type: Option<&'static str>) -> Op {
        self.body = media_type;
        self
    }

    /// The operation needs no authentication (documented with an empty security requirement).
    pub fn open(mut self) -> Op {
        self.open = true;
        self
    }

    /// Wraps the operation's handler (a body limit, say).
    pub fn map(mut self, f: impl FnOnce(MethodRouter<Arc<App>>) -> MethodRouter<Arc<App>>) -> Op {
        self.route = f(self.route);
        self
    }
}

/// Routes of one or more resources, with their documentation.
pub struct Routes {
    tag: &'static str,
    router: Router<Arc<App>>,
    paths: PathsBuilder,
}

impl Routes {
    /// Routes documented under `tag` (a resource: "Projects", "Import storages").
    pub fn new(tag: &'static str) -> Routes {
        Routes { tag, router: Router::new(), paths: PathsBuilder::new() }
    }

    /// Registers and documents `path` (axum syntax, `{id}` for a parameter) with `ops`.
    pub fn route(mut self, path: &str, ops: impl IntoIterator<Item = Op>) -> Routes {
        let mut methods: Option<MethodRouter<Arc<App>>> = None;
        for op in ops {
            let mut operation = OperationBuilder::new()
                .summary(Some(op.summary))
                .tag(self.tag)
                .operation_id(Some(operation_id(op.method.clone(), path)))
                .response(
                    "default",
                    ResponseBuilder::new()
                        .description("Label Studio's JSON answer, or its error shape (`detail`, `validation_errors`)."),
                );
            for name in parameters(path) {
                let kind = if name == "id" { Type::Integer } else { Type::String };
                operation = operation.parameter(
                    ParameterBuilder::new()
                        .name(name)
                        .parameter_in(ParameterIn::Path)
                        .required(Required::True)
                        .schema(Some(utoipa::openapi::ObjectBuilder::new().schema_type(kind))),
                );
            }
            if op.open {
                operation = operation.security(SecurityRequirement::default());
            }
            if let Some(media) = op.body {
                let content = ContentBuilder::new().build();
                operation = operation.request_body(Some(
                    RequestBodyBuilder::new().content(media, content).required(Some(Required::True)).build(),
                ));
            }
            // axum's `{name}` is OpenAPI's syntax too.
            self.paths = self.paths.path(path, PathItem::new(op.method, operation));
            methods = Some(match methods {
                None => op.route,
                Some(m) => m.merge(op.route),
            });
        }
        if let Some(m) = methods {
            self.router = self.router.route(path, m);
        }
        self
    }

    /// Adds the routes of another resource.
    pub fn merge(mut self, other: Routes) -> Routes {
        self.router = self.router.merge(other.router);
        let mut paths = self.paths.build();
        paths.merge(other.paths.build());
        self.paths = paths.into();
        self
    }

    /// The router, with `GET {schema_path}` serving the OpenAPI document of every route
    /// (itself included), and that document.
    pub fn finish(mut self, schema_path: &str) -> (Router<Arc<App>>, Arc<OpenApi>) {
        let doc: Arc<std::sync::OnceLock<String>> = Arc::default();
        let served = doc.clone();
        let json = [(axum::http::header::CONTENT_TYPE, "application/json")];
        let schema = move || {
            let body = served.get().cloned().unwrap_or_default();
            async move { (json, body) }
        };
        self = self.route(schema_path, [get("This document: the REST API in OpenAPI 3", schema).open()]);
        let (router, openapi) = self.build();
        // Serialized once: the document is fixed for the life of the process.
        let _ = doc.set(openapi.to_json().expect("the OpenAPI model serializes"));
        (router, Arc::new(openapi))
    }

    fn build(self) -> (Router<Arc<App>>, OpenApi) {
        let token = ApiKey::Header(ApiKeyValue::with_description(
            "Authorization",
            "`Token <key>`, the user's API token (Django REST framework's TokenAuthentication)",
        ));
        let session = ApiKey::Cookie(ApiKeyValue::with_description(
            super::auth::SESSION_COOKIE,
            "The web page's session; writes also need the session's CSRF token in `X-CSRFToken`",
        ));
        let doc = OpenApiBuilder::new()
            .info(
                InfoBuilder::new()
                    .title("stowage")
                    .version(env!("CARGO_PKG_VERSION"))
                    .description(Some("Label Studio's storage REST API, as stowage serves it.")),
            )
            .paths(self.paths)
            .components(Some(
                ComponentsBuilder::new()
                    .security_scheme("Token", SecurityScheme::ApiKey(token))
                    .security_scheme("Session", SecurityScheme::ApiKey(session))
                    .build(),
            ))
            .security(Some([
                SecurityRequirement::new("Token", Vec::<String>::new()),
                SecurityRequirement::new("Session", Vec::<String>::new()),
            ]))
            .build();
        (self.router, doc)
    }
}

/// The names of a path's `{parameters}`.
fn parameters(path: &str) -> impl Iterator<Item = &str> {
    path.split('/').filter_map(|s| s.strip_prefix('{')?.strip_suffix('}'))
}

/// A unique operation id: `get_api_storages_export_type_id`.
fn operation_id(method: HttpMethod, path: &str) -> String {
    let method = match method {
        HttpMethod::Get => "get",
        HttpMethod::Post => "post",
        HttpMethod::Put => "put",
        HttpMethod::Patch => "patch",
        HttpMethod::Delete => "delete",
        HttpMethod::Head => "head",
        HttpMethod::Options => "options",
        HttpMethod::Trace => "trace",
    };
    let words: Vec<&str> = path.split(|c: char| !c.is_ascii_alphanumeric()).filter(|w| !w.is_empty()).collect();
    format!("{method}_{}", words.join("_"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_parameters_and_operation_ids_come_from_the_path() {
        assert_eq!(parameters("/api/storages/export/{type}/{id}/sync").collect::<Vec<_>>(), ["type", "id"]);
        assert_eq!(parameters("/api/projects").count(), 0);
        assert_eq!(operation_id(HttpMethod::Patch, "/api/storages/{type}/{id}"), "patch_api_storages_type_id");
    }
}
