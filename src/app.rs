//! The daemon's shared state: configuration and the stores every request reads.
//!
//! Nothing here is a cache of the data directory except the spider lists, whose cache is itself on
//! disk and checked against the egg it came from. Everything else is read from the directory on
//! each request, so several instances sharing it agree.

use crate::api::{ApiError, Endpoint};
use crate::config::Config;
use crate::eggs::spiders::{EggIdentity, SpiderCache};
use crate::eggs::{EggStore, StoredEgg};
use crate::http::auth::Credentials;
use crate::runner::Runner;
use crate::spool::Spool;
use crate::spool::finished::FinishedLog;
use crate::spool::index::JobIndex;
use crate::supervisor::SupervisorHandle;
use std::collections::HashMap;
use std::io;
use std::path::PathBuf;
use std::sync::Arc;

/// State shared by every connection.
#[derive(Debug)]
pub struct App {
    pub config: Config,
    pub eggs: EggStore,
    pub spiders: SpiderCache,
    pub runner: Runner,
    /// Endpoint path (`schedule.json`) to endpoint, from `[services]`.
    pub services: HashMap<String, Endpoint>,
    /// Where request values too large for memory are spilled.
    pub upload_dir: PathBuf,
    /// Basic-auth credentials, when both `username` and `password` are set.
    pub credentials: Option<Credentials>,
    /// Every job's state, mirrored from the spool.
    pub index: Arc<JobIndex>,
    /// Where handlers send what the supervisor should do.
    pub supervisor: SupervisorHandle,
}

impl App {
    /// Prepares the stores, loads the job index and writes the runner module out.
    pub fn new(config: Config, supervisor: SupervisorHandle) -> io::Result<App> {
        let spool = Spool::new(&config.spool_dir);
        let runner = Runner::install(&config.python, &config.runner, &spool.internal("runner"), &config.base_dir)?;
        let mut services = HashMap::new();
        for (name, class_path) in &config.services {
            match Endpoint::from_class_path(class_path) {
                Some(endpoint) => {
                    services.insert(name.clone(), endpoint);
                }
                None => {
                    tracing::warn!("[services] {name} = {class_path}: not one of Scrapyd's webservices; not served")
                }
            }
        }
        let upload_dir = spool.internal("uploads");
        std::fs::create_dir_all(&upload_dir)?;
        let spiders = SpiderCache::new(spool.internal("spiders"));
        let log = FinishedLog::new(&spool.internal("finished.jl"));
        let index = Arc::new(JobIndex::load(spool, log, config.finished_to_keep)?);
        Ok(App {
            index,
            supervisor,
            credentials: config.auth().map(|(user, password)| Credentials::new(&user, &password)),
            eggs: EggStore::new(config.eggs_dir.clone()),
            spiders,
            upload_dir,
            runner,
            services,
            config,
        })
    }

    /// The `node_name` every answer carries.
    pub fn node_name(&self) -> &str {
        &self.config.node_name
    }

    /// The settings module of a project declared in `[settings]`, if it is one.
    pub fn settings_module(&self, project: &str) -> Option<&str> {
        self.config.settings_projects.iter().find(|(name, _)| name == project).map(|(_, module)| module.as_str())
    }

    /// Whether a project exists: it has eggs, or it is declared in `[settings]`.
    pub async fn project_exists(&self, project: &str) -> bool {
        if self.settings_module(project).is_some() {
            return true;
        }
        let eggs = self.eggs.clone();
        let project = project.to_string();
        blocking(move || eggs.has_project(&project)).await
    }

    /// Every project: egg projects in directory order, then `[settings]` projects, without
    /// duplicates (stock's order).
    pub async fn projects(&self) -> io::Result<Vec<String>> {
        let eggs = self.eggs.clone();
        let mut projects = blocking(move || eggs.projects()).await?;
        for (name, _) in &self.config.settings_projects {
            if !projects.contains(name) {
                projects.push(name.clone());
            }
        }
        Ok(projects)
    }

    /// The egg to use for `project` at `version` (`None` or blank: the latest).
    ///
    /// A blank `_version` means "the default version" for validation, as in stock.
    pub async fn egg(&self, project: &str, version: Option<&str>) -> Result<Option<StoredEgg>, ApiError> {
        let eggs = self.eggs.clone();
        let project_owned = project.to_string();
        let requested = version.filter(|v| !v.is_empty()).map(str::to_string);
        let found = blocking(move || eggs.get(&project_owned, requested.as_deref())).await?;
        match (found, version.filter(|v| !v.is_empty())) {
            (None, Some(version)) => Err(ApiError::version_not_found(version)),
            (found, _) => Ok(found),
        }
    }

    /// The spiders of `project` at `version`: from the on-disk cache when it matches the egg,
    /// otherwise by running `scrapy list` (then cached).
    pub async fn spiders(&self, project: &str, version: Option<&str>) -> Result<Vec<String>, ApiError> {
        let Some(egg) = self.egg(project, version).await? else {
            // A `[settings]` project has no egg: Scrapy finds it through scrapy.cfg.
            return Ok(self.runner.list_spiders(project, None, None).await?);
        };
        let identity = {
            let path = egg.path.clone();
            blocking(move || EggIdentity::of(&path)).await?
        };
        if let Some(spiders) = self.spiders.get(project, &egg.version, identity) {
            return Ok(spiders);
        }
        let spiders = self.runner.list_spiders(project, Some(&egg.path), version).await?;
        if let Err(err) = self.spiders.put(project, &egg.version, identity, &spiders) {
            tracing::warn!(project, version = egg.version, "could not cache the spider list: {err}");
        }
        Ok(spiders)
    }
}

/// Runs filesystem work off the async workers, so a slow disk never stalls other requests.
pub async fn blocking<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> T {
    match tokio::task::spawn_blocking(work).await {
        Ok(value) => value,
        Err(err) => std::panic::resume_unwind(err.into_panic()),
    }
}
