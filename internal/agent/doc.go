// Package agent is `berth agent`, the process that runs on every host: it
// registers the host with the control plane as a container instance,
// long-polls the desired state of its tasks, runs each task on the
// container engine through a one-step-at-a-time state machine (the diagram
// is in task.go, the steps in step.go and stop.go), reports every
// transition back in idempotent batches, and serves the task metadata
// endpoint to the containers it runs.
//
// # Ownership
//
// The control plane owns desired state and the agent owns observed state.
// One goroutine per task (manager.go) owns that task's record: engine
// events, desired-state changes and periodic inspections arrive in its
// inbox, it takes one step, and it publishes the result: a report for the
// control plane (reporter.go: newest state per task wins, resent until
// acknowledged), the state file, and the metadata endpoint's snapshot.
//
// # Restarts and outages
//
// Everything the agent knows is in Config.StateDir: agent.json (the agent
// id that labels its containers, and the instance id it registered as) and
// tasks/<task id>.json, each written atomically. A restarted agent
// re-registers as the same instance (afresh if the control plane no longer
// knows it), re-adopts its containers by id (and by their deterministic
// engine names if a crash came between create and persist), reports every
// task again, and after the first desired state stops and removes its
// orphans: containers with its agent id whose task is neither known nor
// desired. While the control plane is unreachable, tasks keep running and
// stop on their own (an essential container exits), and the reports queue
// up for later. When Run's context ends the containers keep running.
//
// # The metadata endpoint
//
// The server listens on Config.MetadataListen (all interfaces, port
// 51679, by default). Bridge and awsvpc containers get URIs on the host
// name DefaultMetadataAlias, which the agent maps in their /etc/hosts to
// Docker's "host-gateway" (the default bridge's gateway, an address of the
// host; Docker 20.10 or later); for awsvpc tasks the mapping is on the
// pause container, whose /etc/hosts the task's containers share. Set
// Config.MetadataHost to give containers an explicit address instead.
// Host-mode containers use 127.0.0.1. Each container's path carries its
// own 128-bit random token, which is the only thing that authorises a
// request, so the port should not be reachable from outside the host.
//
// # Pulling images
//
// Credentials for a pull come from Config.RegistryAuth (the user's Docker
// config.json, LoadDockerConfig) for the registries it names. Images on
// the control plane's own registry (the hosts announced at registration,
// and the host of Config.Endpoint) need no configuration: the agent fetches
// a login from the control plane (registrycreds.go), caches it until ten
// minutes before it expires, and after a pull the registry refuses it
// fetches a fresh one and pulls once more. Other images are pulled
// anonymously. Credentials are never logged.
//
// # Supported, and not
//
// Network modes bridge (published ports, dynamic host ports reported as
// the engine bound them), host, none and awsvpc (a per-task pause container
// on the default bridge holds the network namespace; its address is the
// task's "ENI" address; the agent builds its own pause image and loads it
// when the runtime implements ImageLoader). Volumes: host paths (bind
// mounts), task-scoped volumes (created and removed with the task), Docker
// volumes of scope task or shared (autoprovision). dependsOn START,
// COMPLETE, SUCCESS, HEALTHY with startTimeout; health checks; stopTimeout;
// essential containers; overrides of command, environment, cpu, memory and
// memoryReservation; log drivers json-file and none.
//
// Refused with a stoppedReason that says so, never silently ignored:
// other log drivers, secrets, environmentFiles, repositoryCredentials,
// FireLens, resourceRequirements, credentialSpecs, dockerSecurityOptions,
// links, interactive and pseudoTerminal, restart policies,
// linuxParameters devices, tmpfs, sharedMemorySize, maxSwap and
// swappiness, containerPortRange, pidMode, ipcMode, proxyConfiguration,
// inference accelerators, and EFS, FSx and S3 Files volumes. Task IAM role
// credentials are not served (the task-iam-role capability is not
// advertised).
package agent
