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
use crate::runtime::blocking;
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
    /// Prepares the stores, loads the job index, imports stock Scrapyd's jobs from `dbs/` (once)
    /// and writes the runner module out.
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
        // Stock's queues and history become ours before anything is dispatched; an instance that
        // waited for another's import catches up with what it wrote.
        crate::migrate::run(&config, &index, crate::migrate::Mode::Import).log();
        index.rescan_all()?;
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

    /// Brings the job index up to date with what other instances sharing the spool changed, as
    /// answers about jobs do before they read it. Those changes also come through the spool
    /// watch, but not at once, and changes to pending jobs not at all while every slot of this
    /// instance is busy. A failure is logged, and the answer is given from what is known.
    ///
    /// In place on the async worker (see [`crate::runtime`]): when nothing moved this is one read
    /// of each project's change counter and a `stat` of the finished log; a project that moved is
    /// re-listed, and new lines of the log are read, after handing the worker off.
    pub fn catch_up(&self) {
        if let Err(err) = self.index.catch_up() {
            tracing::warn!("catching up with the spool failed: {err}");
        }
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

    /// The spiders of an existing `project` at `version` (`None` or blank: the latest), with
    /// stock's errors in stock's order: `project 'p' not found`, then `version 'v' not found`.
    pub async fn project_spiders(&self, project: &str, version: Option<&str>) -> Result<Vec<String>, ApiError> {
        self.with_spiders(project, version, |spiders| spiders).await
    }

    /// Runs `then` on the spiders of `project` at `version` (see [`App::project_spiders`]).
    ///
    /// With the spider list cached, the checks, the cache lookup and `then` run in place on the
    /// async worker (see [`crate::runtime`]): this is the path of every `schedule.json`, whose
    /// `then` writes the job, and it is short (a directory listing, a lookup in memory, one
    /// synchronous write). Only a cache miss runs `scrapy list` (and caches its answer) before
    /// `then` runs, as blocking work.
    pub async fn with_spiders<T: Send + 'static>(
        &self,
        project: &str,
        version: Option<&str>,
        then: impl FnOnce(Vec<String>) -> T + Send + 'static,
    ) -> Result<T, ApiError> {
        match self.look_up_spiders(project, version, then)? {
            Lookup::Done(value) => Ok(value),
            Lookup::NoEgg(then) => {
                let spiders = self.runner.list_spiders(project, None, None).await?;
                Ok(blocking(move || then(spiders)).await)
            }
            Lookup::Miss(egg, identity, then) => {
                let spiders = self.runner.list_spiders(project, Some(&egg.path), version).await?;
                let (cache, name) = (self.spiders.clone(), project.to_string());
                Ok(blocking(move || {
                    if let Err(err) = cache.put(&name, &egg.version, identity, &spiders) {
                        tracing::warn!(project = name, "could not cache the spider list: {err}");
                    }
                    then(spiders)
                })
                .await)
            }
        }
    }

    /// [`App::with_spiders`]' first step: the checks, and `then` if the spider list is cached.
    fn look_up_spiders<T, F: FnOnce(Vec<String>) -> T>(
        &self,
        project: &str,
        version: Option<&str>,
        then: F,
    ) -> Result<Lookup<T, F>, ApiError> {
        let requested = version.filter(|v| !v.is_empty());
        if self.settings_module(project).is_none() && !self.eggs.has_project(project) {
            return Err(ApiError::project_not_found(project));
        }
        let Some((egg, identity)) = self.eggs.get_identified(project, requested)? else {
            return match requested {
                Some(version) => Err(ApiError::version_not_found(version)),
                // A `[settings]` project has no egg: Scrapy finds it through scrapy.cfg.
                None => Ok(Lookup::NoEgg(then)),
            };
        };
        Ok(match self.spiders.get(project, &egg.version, identity) {
            Some(spiders) => Lookup::Done(then(spiders)),
            None => Lookup::Miss(egg, identity, then),
        })
    }
}

/// How far [`App::with_spiders`] got in its first step: done (the list was cached),
/// or holding the work until `scrapy list` has answered.
enum Lookup<T, F> {
    Done(T),
    Miss(StoredEgg, EggIdentity, F),
    NoEgg(F),
}
