// Offline checks of walvault's Kubernetes manifests and Helm chart renderings
// (tests/packaging/manifests.sh runs it). Usage:
//   node validate.mjs parse PACKAGING_DIR
//       every *.yaml / *.yml under packaging/ parses (all documents), Helm templates excepted
//       (they are Go templates); every *.json parses.
//   node validate.mjs check RENDERED_DIR PROMETHEUSRULE_FILE CONF_OUT_DIR
//       every RENDERED_DIR/<name>.yaml (one rendering each, named as in RENDERINGS below) is
//       validated against the Kubernetes schemas (kubernetes-models) and asserted on; the
//       walvaultd.conf of each rendering's ConfigMap is written to CONF_OUT_DIR/<name>.conf.
// Prints "ok: ..." / "FAIL: ..." per check; exits 1 on any failure.
import fs from "node:fs";
import path from "node:path";
import { isDeepStrictEqual } from "node:util";
import YAML from "yaml";
import { ServiceAccount, ConfigMap, Service } from "kubernetes-models/v1";
import { StatefulSet } from "kubernetes-models/apps/v1";
import { Job, CronJob } from "kubernetes-models/batch/v1";

let failures = 0;
let passes = 0;
function check(cond, what) {
  if (cond) { passes++; console.log(`ok: ${what}`); } else { failures++; console.log(`FAIL: ${what}`); }
  return !!cond;
}

// What each rendering must contain: repository type, encryption, native sidecar, and which
// objects (workload = StatefulSet + Services + CronJob; restore / pitr = that Job).
const RENDERINGS = {
  "kustomize-local":           { repo: "local", enc: false, native: true,  workload: true,  restore: false, pitr: false },
  "kustomize-local-restore":   { repo: "local", enc: false, native: true,  workload: false, restore: true,  pitr: false },
  "kustomize-local-pitr":      { repo: "local", enc: false, native: true,  workload: false, restore: false, pitr: true },
  "kustomize-s3":              { repo: "s3",    enc: true,  native: true,  workload: true,  restore: false, pitr: false },
  "kustomize-s3-restore":      { repo: "s3",    enc: true,  native: true,  workload: false, restore: true,  pitr: false },
  "kustomize-s3-pitr":         { repo: "s3",    enc: true,  native: true,  workload: false, restore: false, pitr: true },
  "kustomize-classic-sidecar": { repo: "local", enc: false, native: false, workload: true,  restore: false, pitr: false },
  "helm-default":              { repo: "local", enc: false, native: true,  workload: true,  restore: false, pitr: false },
  "helm-s3-encryption":        { repo: "s3",    enc: true,  native: true,  workload: true,  restore: true,  pitr: true, monitoring: true },
  "helm-classic-sidecar":      { repo: "local", enc: false, native: false, workload: true,  restore: false, pitr: false },
  "helm-local-jobs":           { repo: "local", enc: false, native: true,  workload: true,  restore: true,  pitr: true },
};

const MODELS = {
  "v1/ServiceAccount": ServiceAccount,
  "v1/ConfigMap": ConfigMap,
  "v1/Service": Service,
  "apps/v1/StatefulSet": StatefulSet,
  "batch/v1/Job": Job,
  "batch/v1/CronJob": CronJob,
};
// Custom resources kubernetes-models has no schema for: checked by the assertions below.
const CRDS = new Set(["monitoring.coreos.com/v1/ServiceMonitor", "monitoring.coreos.com/v1/PrometheusRule"]);

function walk(dir, out = []) {
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) walk(p, out); else out.push(p);
  }
  return out;
}

function parseAll(packagingDir) {
  const files = walk(packagingDir).sort();
  let yamlCount = 0;
  for (const f of files) {
    const rel = path.relative(packagingDir, f);
    if (/\.ya?ml$/.test(f)) {
      if (/^helm\/[^/]+\/templates\//.test(rel)) continue;  // Go templates, rendered by helm
      yamlCount++;
      const docs = YAML.parseAllDocuments(fs.readFileSync(f, "utf8"));
      const errors = docs.flatMap((d) => d.errors.map((e) => e.message));
      check(errors.length === 0 && docs.length > 0,
        `packaging/${rel} parses (${docs.length} document(s))${errors.length ? ": " + errors[0] : ""}`);
    } else if (f.endsWith(".json")) {
      let ok = true, msg = "";
      try { JSON.parse(fs.readFileSync(f, "utf8")); } catch (e) { ok = false; msg = ": " + e.message; }
      check(ok, `packaging/${rel} parses as JSON${msg}`);
    }
  }
  check(yamlCount >= 20, `found ${yamlCount} YAML files under packaging/ (at least 20 expected)`);
}

const byName = (list, name) => (list || []).find((x) => x.name === name);
const mountAt = (c, p) => (c.volumeMounts || []).find((m) => m.mountPath === p);
const envOf = (c, n) => (c.env || []).find((e) => e.name === n);

function checkWalvaultd(tag, podSpec, c, { native, mode }) {
  const where = `${tag}: walvaultd`;
  const inInit = (podSpec.initContainers || []).some((x) => x === c);
  if (native) {
    check(inInit && c.restartPolicy === "Always", `${where} is a native sidecar (initContainers, restartPolicy Always)`);
    if (mode === "statefulset") {
      const names = podSpec.initContainers.map((x) => x.name);
      check(names.indexOf("install-clients") === 0 && names.indexOf("walvaultd") === 1,
        `${where} comes after install-clients in initContainers (${names.join(", ")})`);
    }
  } else {
    check(!inInit && (podSpec.containers || []).includes(c) && c.restartPolicy === undefined,
      `${where} is an ordinary container (classic sidecar, no restartPolicy)`);
  }
  for (const probe of ["startupProbe", "livenessProbe"]) {
    const g = c[probe]?.httpGet;
    check(g && g.path === "/healthz" && g.port === 9187, `${where} ${probe} is httpGet /healthz :9187`);
  }
  check(c.readinessProbe === undefined, `${where} has no readinessProbe`);
  const sc = c.securityContext || {};
  check(sc.runAsNonRoot === true && sc.runAsUser === 10001 && sc.runAsGroup === 10001,
    `${where} runs as non-root uid/gid 10001`);
  check(sc.readOnlyRootFilesystem === true, `${where} readOnlyRootFilesystem`);
  check(sc.allowPrivilegeEscalation === false, `${where} allowPrivilegeEscalation false`);
  check((sc.capabilities?.drop || []).includes("ALL"), `${where} drops ALL capabilities`);
  const r = c.resources || {};
  check(r.requests?.memory === "128Mi" && r.requests?.cpu === "100m" && r.limits?.memory === "512Mi",
    `${where} resources requests 128Mi/100m, limit 512Mi`);
  check(c.args?.join(" ") === "--config /etc/walvault/walvaultd.conf", `${where} reads /etc/walvault/walvaultd.conf`);
  const cfg = mountAt(c, "/etc/walvault");
  const cfgVol = cfg && byName(podSpec.volumes, cfg.name);
  check(cfgVol?.configMap?.name, `${where} mounts a ConfigMap at /etc/walvault`);
  const spool = mountAt(c, "/var/lib/walvault/spool");
  check(spool, `${where} mounts the spool at /var/lib/walvault/spool`);
  const sock = mountAt(c, "/run/walvault");
  check(sock && byName(podSpec.volumes, sock.name)?.emptyDir, `${where} has the socket emptyDir at /run/walvault`);
  check(mountAt(c, "/tmp"), `${where} has a writable /tmp (read-only root)`);
  if (mode !== "statefulset") {
    const pg = envOf(c, "WALVAULT_PGDATA");
    check(pg && pg.value === "" && !mountAt(c, "/var/lib/postgresql/data"),
      `${where} has no pgdata (WALVAULT_PGDATA empty, data not mounted)`);
    check(envOf(c, "WALVAULT_BACKUP_SCHEDULE")?.value === "off" && envOf(c, "WALVAULT_PRUNE_INTERVAL")?.value === "0",
      `${where} takes no scheduled backups and prunes nothing`);
  }
  return { cfgVol, spool, sock };
}

function checkRepoAndSecrets(tag, podSpec, c, exp, claimNames) {
  const where = `${tag}: walvaultd`;
  const repo = mountAt(c, "/var/lib/walvault/repo");
  if (exp.repo === "local") {
    const isClaim = repo && (claimNames.includes(repo.name) || byName(podSpec.volumes, repo.name)?.persistentVolumeClaim);
    check(isClaim && repo.readOnly !== true, `${where} mounts the local repository (a PVC) read-write at /var/lib/walvault/repo`);
  } else {
    check(!repo, `${where} has no local repository mount (S3)`);
    const m = mountAt(c, "/etc/walvault/s3");
    const v = m && byName(podSpec.volumes, m.name);
    check(m?.readOnly === true && v?.secret?.secretName && v.secret.defaultMode === 0o440,
      `${where} mounts the S3 credentials Secret read-only at /etc/walvault/s3 with mode 0440`);
  }
  const km = mountAt(c, "/etc/walvault/keys");
  if (exp.enc) {
    const v = km && byName(podSpec.volumes, km.name);
    check(km?.readOnly === true && v?.secret?.secretName && v.secret.defaultMode === 0o440,
      `${where} mounts the encryption key Secret read-only at /etc/walvault/keys with mode 0440`);
    check(envOf(c, "WALVAULT_ENCRYPTION_KEY_FILE")?.value === "/etc/walvault/keys/current",
      `${where} WALVAULT_ENCRYPTION_KEY_FILE=/etc/walvault/keys/current`);
  } else {
    check(!km && !envOf(c, "WALVAULT_ENCRYPTION_KEY_FILE"), `${where} has no encryption key (not enabled)`);
  }
}

function checkConf(tag, text, exp) {
  const has = (re, what) => check(re.test(text), `${tag}: walvaultd.conf ${what}`);
  has(/^retention-backup-days = 30$/m, "keeps backups 30 days (retention-backup-days = 30)");
  has(/^retention-wal-days = 7$/m, "keeps 7 days of WAL (retention-wal-days = 7)");
  has(/^backup-schedule = 0 2 \* \* \*$/m, "backup-schedule = 0 2 * * *");
  has(/^allow-uid = 999,10001$/m, "allow-uid = 999,10001");
  has(/^socket-group = 999$/m, "socket-group = 999");
  has(/^socket-mode = 0660$/m, "socket-mode = 0660");
  has(/^socket = \/run\/walvault\/walvault\.sock$/m, "socket = /run/walvault/walvault.sock");
  has(/^metrics-listen = 0\.0\.0\.0:9187$/m, "metrics-listen = 0.0.0.0:9187");
  has(/^pgdata = \/var\/lib\/postgresql\/data\/pgdata$/m, "pgdata = /var/lib/postgresql/data/pgdata");
  has(/^pg-conninfo = host=\/var\/run\/postgresql user=postgres$/m, "pg-conninfo over /var/run/postgresql");
  has(/^spool = \/var\/lib\/walvault\/spool$/m, "spool = /var/lib/walvault/spool");
  if (exp.repo === "local") has(/^repo = \/var\/lib\/walvault\/repo$/m, "repo = /var/lib/walvault/repo");
  else {
    has(/^repo = s3:\/\/[a-z0-9.-]+(\/\S+)?$/m, "repo = s3://bucket/prefix");
    has(/^s3-credentials-file = \/etc\/walvault\/s3\/credentials$/m, "s3-credentials-file = /etc/walvault/s3/credentials");
  }
}

function checkStatefulSet(tag, sts, exp) {
  const ps = sts.spec.template.spec;
  check(ps.securityContext?.fsGroup === 999, `${tag}: pod fsGroup 999`);
  check(ps.automountServiceAccountToken === false, `${tag}: no service account token mounted`);
  const all = [...(ps.initContainers || []), ...ps.containers];
  const w = all.find((c) => c.name === "walvaultd");
  const pg = byName(ps.containers, "postgres");
  const ic = byName(ps.initContainers, "install-clients");
  if (!check(w && pg && ic, `${tag}: containers walvaultd, postgres, install-clients exist`)) return null;
  const claims = sts.spec.volumeClaimTemplates.map((v) => v.metadata.name);
  const { cfgVol, sock } = checkWalvaultd(tag, ps, w, { native: exp.native, mode: "statefulset" });
  checkRepoAndSecrets(tag, ps, w, exp, claims);
  check(claims.includes("walvault-spool"), `${tag}: the spool volume exists (volumeClaimTemplate walvault-spool)`);
  check(exp.repo === "local" ? claims.includes("walvault-repo") : !claims.includes("walvault-repo"),
    `${tag}: volumeClaimTemplate walvault-repo ${exp.repo === "local" ? "present" : "absent"} (${claims.join(", ")})`);
  // The socket emptyDir in both containers.
  const pgSock = mountAt(pg, "/run/walvault");
  check(sock && pgSock && pgSock.name === sock.name, `${tag}: the socket emptyDir '${sock?.name}' is mounted at /run/walvault in walvaultd and postgres`);
  // PGDATA: read-write in postgres, read-only in the sidecar, the same claim.
  const wData = mountAt(w, "/var/lib/postgresql/data");
  const pData = mountAt(pg, "/var/lib/postgresql/data");
  check(wData && wData.readOnly === true && pData && pData.name === wData.name && pData.readOnly !== true && claims.includes(wData.name),
    `${tag}: the data PVC is mounted read-only in walvaultd and read-write in postgres`);
  const wRun = mountAt(w, "/var/run/postgresql"), pRun = mountAt(pg, "/var/run/postgresql");
  check(wRun && pRun && wRun.name === pRun.name, `${tag}: PostgreSQL's socket directory is shared (pg_basebackup)`);
  // The clients.
  const args = (pg.args || []).join("\n");
  check(/^archive_mode=on$/m.test(args), `${tag}: postgres archive_mode=on`);
  check(/^archive_command=\/walvault\/bin\/archive-push %p$/m.test(args), `${tag}: archive_command=/walvault/bin/archive-push %p`);
  check(/^restore_command=\/walvault\/bin\/archive-get %f %p$/m.test(args), `${tag}: restore_command=/walvault/bin/archive-get %f %p`);
  const pgBin = mountAt(pg, "/walvault/bin"), icBin = mountAt(ic, "/walvault/bin");
  check(pgBin?.readOnly === true && icBin && icBin.name === pgBin.name && byName(ps.volumes, pgBin.name)?.emptyDir,
    `${tag}: the clients' emptyDir is filled by install-clients and read-only in postgres`);
  check(ic.command?.join(" ") === "cp /usr/bin/archive-push /usr/bin/archive-get /walvault/bin/",
    `${tag}: install-clients copies archive-push and archive-get`);
  check(envOf(pg, "PGDATA")?.value === "/var/lib/postgresql/data/pgdata", `${tag}: PGDATA=/var/lib/postgresql/data/pgdata`);
  check(/--allow-group-access/.test(envOf(pg, "POSTGRES_INITDB_ARGS")?.value || ""), `${tag}: initdb --allow-group-access`);
  check(pg.securityContext?.runAsUser === 999, `${tag}: postgres runs as uid 999`);
  check(pg.resources?.requests?.memory && pg.resources?.limits?.memory, `${tag}: postgres has resources`);
  return cfgVol?.configMap?.name;
}

function checkRestoreJob(tag, job, exp, pitr, stsName) {
  const ps = job.spec.template.spec;
  check(ps.securityContext?.fsGroup === 999, `${tag}: pod fsGroup 999`);
  check(ps.restartPolicy === "Never" && job.spec.suspend !== true, `${tag}: runs (not suspended, restartPolicy Never)`);
  const w = byName(ps.initContainers, "walvaultd");
  const r = byName(ps.containers, "restore");
  if (!check(w && r, `${tag}: walvaultd sidecar and restore container exist`)) return null;
  const { cfgVol, sock } = checkWalvaultd(tag, ps, w, { native: true, mode: "job" });
  checkRepoAndSecrets(tag, ps, w, exp, []);
  const cmd = r.command || [];
  const after = (flag) => cmd[cmd.indexOf(flag) + 1];
  check(cmd[0] === "/usr/bin/walvault" && cmd[cmd.indexOf("--connect-timeout") + 2] === "restore", `${tag}: runs walvault restore`);
  check(Number(after("--connect-timeout")) >= 60, `${tag}: waits for the sidecar's socket (--connect-timeout >= 60)`);
  check(after("--archive-get") === "/walvault/bin/archive-get", `${tag}: --archive-get /walvault/bin/archive-get`);
  check(after("--pgdata") === "/var/lib/postgresql/data/pgdata" && cmd.includes("--force"), `${tag}: --pgdata /var/lib/postgresql/data/pgdata --force`);
  if (pitr) {
    const t = after("--target-time");
    const env = t === "$(TARGET_TIME)" ? envOf(r, "TARGET_TIME")?.value : t;
    check(t && env, `${tag}: --target-time given (${env})`);
  } else {
    check(!cmd.includes("--target-time") && after("--backup") === "latest", `${tag}: --backup latest, no target`);
  }
  const sc = r.securityContext || {};
  check(sc.runAsUser === 999 && sc.runAsGroup === 999 && sc.runAsNonRoot === true, `${tag}: restore runs as uid/gid 999`);
  check(sc.readOnlyRootFilesystem === true && sc.allowPrivilegeEscalation === false && (sc.capabilities?.drop || []).includes("ALL"),
    `${tag}: restore container hardened`);
  const data = mountAt(r, "/var/lib/postgresql/data");
  const dv = data && byName(ps.volumes, data.name);
  check(data && data.readOnly !== true && dv?.persistentVolumeClaim?.claimName === `data-${stsName}-0`,
    `${tag}: data-${stsName}-0 mounted read-write at /var/lib/postgresql/data`);
  const rs = mountAt(r, "/run/walvault");
  check(rs && sock && rs.name === sock.name, `${tag}: the socket emptyDir is shared with the restore container`);
  const sp = byName(ps.volumes, mountAt(w, "/var/lib/walvault/spool")?.name);
  check(sp?.persistentVolumeClaim?.claimName === `walvault-spool-${stsName}-0`, `${tag}: uses the StatefulSet's spool claim`);
  if (exp.repo === "local") {
    const rv = byName(ps.volumes, mountAt(w, "/var/lib/walvault/repo")?.name);
    check(rv?.persistentVolumeClaim?.claimName === `walvault-repo-${stsName}-0`, `${tag}: uses the StatefulSet's repository claim`);
  }
  return cfgVol?.configMap?.name;
}

function checkCronJob(tag, cj, exp) {
  const ps = cj.spec.jobTemplate.spec.template.spec;
  const w = byName(ps.initContainers, "walvaultd");
  const d = byName(ps.containers, "drill");
  if (!check(w && d, `${tag}: drill CronJob has walvaultd and drill`)) return null;
  const { cfgVol, sock } = checkWalvaultd(tag, ps, w, { native: true, mode: "drill" });
  checkRepoAndSecrets(tag, ps, w, exp, []);
  const dc = d.command || [];
  check(dc[0] === "/usr/bin/walvault" && dc[dc.indexOf("--connect-timeout") + 2] === "drill", `${tag}: runs walvault drill`);
  check(Number(dc[dc.indexOf("--connect-timeout") + 1]) >= 60, `${tag}: drill waits for the sidecar's socket (--connect-timeout >= 60)`);
  check(mountAt(d, "/run/walvault")?.name === sock?.name, `${tag}: drill shares the socket`);
  const spool = byName(ps.volumes, mountAt(w, "/var/lib/walvault/spool")?.name);
  check(spool?.emptyDir, `${tag}: drill's walvaultd has its own (emptyDir) index, never the StatefulSet's`);
  const aff = ps.affinity?.podAffinity?.requiredDuringSchedulingIgnoredDuringExecution?.[0];
  if (exp.repo === "local") check(aff?.topologyKey === "kubernetes.io/hostname", `${tag}: drill pinned to postgres-0's node (RWO repository)`);
  else check(!ps.affinity, `${tag}: drill not pinned (S3)`);
  check(cj.spec.concurrencyPolicy === "Forbid", `${tag}: one drill at a time`);
  return cfgVol?.configMap?.name;
}

function checkRendering(name, file, ruleSpec, confOut) {
  const exp = RENDERINGS[name];
  // YAML 1.1, as the API server reads it (sigs.k8s.io/yaml): defaultMode 0440 is octal there.
  const docs = YAML.parseAllDocuments(fs.readFileSync(file, "utf8"), { version: "1.1" }).map((d) => d.toJS()).filter(Boolean);
  check(docs.length > 0, `${name}: rendered ${docs.length} object(s)`);
  for (const o of docs) {
    const key = `${o.apiVersion}/${o.kind}`;
    const id = `${name}: ${o.kind} ${o.metadata?.name}`;
    if (MODELS[key]) {
      let err = null;
      try { new MODELS[key](o).validate(); } catch (e) { err = e.message.split("\n").slice(0, 3).join(" "); }
      check(!err, `${id} validates against the Kubernetes schema${err ? ": " + err : ""}`);
    } else {
      check(CRDS.has(key), `${id} is a known kind (${key})`);
    }
  }
  const of = (kind) => docs.filter((o) => o.kind === kind);
  const stsList = of("StatefulSet");
  const jobs = of("Job");
  const restore = jobs.find((j) => j.metadata.name.endsWith("walvault-restore"));
  const pitr = jobs.find((j) => j.metadata.name.endsWith("walvault-pitr"));
  check(exp.workload ? stsList.length === 1 : stsList.length === 0, `${name}: ${exp.workload ? "one StatefulSet" : "no StatefulSet (a Job rendering)"}`);
  check(!!restore === exp.restore, `${name}: restore Job ${exp.restore ? "rendered" : "absent"}`);
  check(!!pitr === exp.pitr, `${name}: PITR Job ${exp.pitr ? "rendered" : "absent"}`);
  const cmNames = new Set();
  let stsName = "postgres";
  if (stsList[0]) {
    stsName = stsList[0].metadata.name;
    cmNames.add(checkStatefulSet(`${name} StatefulSet`, stsList[0], exp));
    const svc = of("Service");
    const headless = svc.find((s) => s.spec.clusterIP === "None");
    check(headless && headless.metadata.name === stsList[0].spec.serviceName, `${name}: headless Service ${stsList[0].spec.serviceName}`);
    check(svc.some((s) => s.spec.ports.some((p) => p.port === 9187)), `${name}: metrics Service on port 9187`);
    const cj = of("CronJob");
    if (check(cj.length === 1, `${name}: drill CronJob`)) cmNames.add(checkCronJob(`${name} drill`, cj[0], exp));
    const sa = of("ServiceAccount");
    check(sa.length === 1 && sa[0].automountServiceAccountToken === false, `${name}: ServiceAccount without token automount`);
  }
  if (restore) cmNames.add(checkRestoreJob(`${name} restore Job`, restore, exp, false, stsName));
  if (pitr) cmNames.add(checkRestoreJob(`${name} PITR Job`, pitr, exp, true, stsName));
  cmNames.delete(undefined);
  check(cmNames.size === 1, `${name}: every walvaultd reads the same ConfigMap (${[...cmNames].join(", ")})`);
  const cm = of("ConfigMap").find((c) => cmNames.has(c.metadata.name));
  if (check(cm?.data?.["walvaultd.conf"], `${name}: ConfigMap ${[...cmNames][0]} holds walvaultd.conf`)) {
    checkConf(name, cm.data["walvaultd.conf"], exp);
    fs.writeFileSync(path.join(confOut, `${name}.conf`), cm.data["walvaultd.conf"]);
  }
  if (exp.monitoring) {
    const pr = of("PrometheusRule");
    check(pr.length === 1 && isDeepStrictEqual(pr[0].spec, ruleSpec),
      `${name}: the PrometheusRule's spec equals packaging/prometheus/walvault-prometheusrule.yaml's`);
    const sm = of("ServiceMonitor");
    check(sm.length === 1 && sm[0].spec.endpoints?.[0]?.port === "metrics" && sm[0].spec.endpoints[0].path === "/metrics",
      `${name}: ServiceMonitor scrapes port metrics /metrics`);
  } else {
    check(of("PrometheusRule").length === 0 && of("ServiceMonitor").length === 0, `${name}: no PrometheusRule/ServiceMonitor (not enabled)`);
  }
}

const [mode, ...rest] = process.argv.slice(2);
if (mode === "parse") {
  parseAll(rest[0]);
} else if (mode === "check") {
  const [renderedDir, ruleFile, confOut] = rest;
  const ruleSpec = YAML.parse(fs.readFileSync(ruleFile, "utf8")).spec;
  for (const name of Object.keys(RENDERINGS)) {
    const f = path.join(renderedDir, `${name}.yaml`);
    if (check(fs.existsSync(f), `${name}: rendering present`)) checkRendering(name, f, ruleSpec, confOut);
  }
} else {
  console.error("usage: validate.mjs parse PACKAGING_DIR | check RENDERED_DIR PROMETHEUSRULE_FILE CONF_OUT_DIR");
  process.exit(2);
}
console.log(`validate.mjs ${mode}: ${passes} ok, ${failures} failed`);
process.exit(failures ? 1 : 0);
