"""The manifest model: rendered manifests -> objects with the source position of every
field (model), the shape pdgen's checks read (shape), the pod templates of every workload
kind and how many pods each makes (templates: Deployment, StatefulSet, DaemonSet, Job,
LeaderWorkerSet, Pod, a DynamoGraphDeployment's main containers), the roles of a
RoleBasedGroup or DisaggregatedSet resolved as their controllers resolve them (groups, with
merge for templateRef patches), the pods themselves as their controllers name them (pods),
and what Prometheus scrapes (scrape). The lint, the cluster commands (preflight's fit) and
the data-plane harness read manifests through it."""

from pdgen.manifests.groups import (
                                    DS_NAME_LABEL,
                                    DS_ROLE_LABEL,
                                    GROUP_CONTROLLERS,
                                    RBG_GROUP_LABEL,
                                    RBG_ROLE_LABEL,
                                    GroupRole,
                                    group_roles,
)
from pdgen.manifests.merge import MERGE_KEYS, strategic_merge
from pdgen.manifests.model import Obj, parse
from pdgen.manifests.pods import PodInstance, controller_services, instances, pod_names, rbg_service
from pdgen.manifests.scrape import scraped
from pdgen.manifests.shape import shape_error
from pdgen.manifests.templates import containers, pod_templates, replica_counts, strings

__all__ = ["DS_NAME_LABEL", "DS_ROLE_LABEL", "GROUP_CONTROLLERS", "MERGE_KEYS", "RBG_GROUP_LABEL", "RBG_ROLE_LABEL",
           "GroupRole", "Obj", "PodInstance", "containers", "controller_services", "group_roles", "instances", "parse",
           "pod_names", "pod_templates", "rbg_service", "replica_counts", "scraped", "shape_error", "strategic_merge",
           "strings"]
