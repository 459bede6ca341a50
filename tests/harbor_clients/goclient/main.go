// harbor-go-client drives a Harbor-compatible API with Harbor's own Go client
// (github.com/goharbor/go-client, the library harbor-cli and Harbor's
// Terraform provider are built on) and prints one JSON line per operation:
//
//	{"op": "project.create", "ok": true, "detail": "..."}
//
// tests/harbor_clients/test_go_client.py runs it against a live Berth and
// asserts every line. Configuration comes from the environment:
// HARBOR_URL (http://host:port), HARBOR_USERNAME, HARBOR_PASSWORD (a system
// administrator), HARBOR_CONTENT_PROJECT (a project holding the repository
// "app" with the tag "v1"), HARBOR_ATTACHED_PROJECT (a project holding "app:v1"
// with one notation signature as its referrer, and the Helm chart
// "chart:0.1.0" whose values.yaml is HARBOR_CHART_VALUES), HARBOR_SUFFIX
// (makes names unique).
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/go-openapi/runtime"
	httptransport "github.com/go-openapi/runtime/client"
	"github.com/goharbor/go-client/pkg/harbor"
	v2 "github.com/goharbor/go-client/pkg/sdk/v2.0/client"
	"github.com/goharbor/go-client/pkg/sdk/v2.0/client/artifact"
	"github.com/goharbor/go-client/pkg/sdk/v2.0/client/auditlog"
	"github.com/goharbor/go-client/pkg/sdk/v2.0/client/configure"
	"github.com/goharbor/go-client/pkg/sdk/v2.0/client/gc"
	"github.com/goharbor/go-client/pkg/sdk/v2.0/client/health"
	"github.com/goharbor/go-client/pkg/sdk/v2.0/client/immutable"
	"github.com/goharbor/go-client/pkg/sdk/v2.0/client/label"
	"github.com/goharbor/go-client/pkg/sdk/v2.0/client/member"
	"github.com/goharbor/go-client/pkg/sdk/v2.0/client/permissions"
	"github.com/goharbor/go-client/pkg/sdk/v2.0/client/ping"
	"github.com/goharbor/go-client/pkg/sdk/v2.0/client/project"
	"github.com/goharbor/go-client/pkg/sdk/v2.0/client/project_metadata"
	"github.com/goharbor/go-client/pkg/sdk/v2.0/client/quota"
	"github.com/goharbor/go-client/pkg/sdk/v2.0/client/repository"
	"github.com/goharbor/go-client/pkg/sdk/v2.0/client/retention"
	"github.com/goharbor/go-client/pkg/sdk/v2.0/client/robot"
	"github.com/goharbor/go-client/pkg/sdk/v2.0/client/search"
	"github.com/goharbor/go-client/pkg/sdk/v2.0/client/statistic"
	"github.com/goharbor/go-client/pkg/sdk/v2.0/client/systeminfo"
	"github.com/goharbor/go-client/pkg/sdk/v2.0/client/user"
	"github.com/goharbor/go-client/pkg/sdk/v2.0/models"
)

type result struct {
	Op     string `json:"op"`
	OK     bool   `json:"ok"`
	Detail string `json:"detail,omitempty"`
}

var out = json.NewEncoder(os.Stdout)

// step runs one operation with its own deadline and prints its outcome.
func step(op string, f func(ctx context.Context) (string, error)) bool {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	detail, err := f(ctx)
	if err != nil {
		detail = describe(err)
	}
	_ = out.Encode(result{Op: op, OK: err == nil, Detail: detail})
	return err == nil
}

// describe turns a client error into text: the status and Harbor's error
// envelope when the server sent one.
func describe(err error) string {
	if status, message := undeclared(err); status != 0 {
		return fmt.Sprintf("status %d: %s", status, message)
	}
	v := reflect.ValueOf(err)
	if v.Kind() == reflect.Ptr && !v.IsNil() {
		if p := v.Elem().FieldByName("Payload"); p.IsValid() {
			body, _ := json.Marshal(p.Interface())
			return fmt.Sprintf("%v %s", err, body)
		}
	}
	return err.Error()
}

// undeclared reads the status and message of an answer that the operation's
// swagger does not declare: the client returns it as a runtime.APIError whose
// body it has already closed, so the message comes from the recording transport.
func undeclared(err error) (int, string) {
	apiErr, ok := err.(*runtime.APIError)
	if !ok {
		return 0, ""
	}
	var envelope models.Errors
	if json.Unmarshal(lastBody, &envelope) == nil && len(envelope.Errors) > 0 {
		return apiErr.Code, envelope.Errors[0].Message
	}
	return apiErr.Code, string(lastBody)
}

// lastBody is the body of the latest error response (steps run one at a time).
var lastBody []byte

type recorder struct{ next http.RoundTripper }

func (r recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := r.next.RoundTrip(req)
	if err != nil || resp.StatusCode < 400 {
		return resp, err
	}
	lastBody, _ = io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(lastBody))
	return resp, nil
}

// count checks how many items a listing returned.
func count(got, want int, what string) error {
	if got != want {
		return fail("%d %s, want %d", got, what, want)
	}
	return nil
}

func fail(format string, args ...any) error { return fmt.Errorf(format, args...) }

func ptr[T any](v T) *T { return &v }

// idFrom reads the id at the end of a Location header.
func idFrom(location string) int64 {
	parts := strings.Split(strings.TrimRight(location, "/"), "/")
	id, _ := strconv.ParseInt(parts[len(parts)-1], 10, 64)
	return id
}

// missing lists the JSON names of the nil pointer fields of a response.
func missing(v any) []string {
	var names []string
	rv := reflect.ValueOf(v).Elem()
	for i := 0; i < rv.NumField(); i++ {
		if rv.Field(i).Kind() == reflect.Ptr && rv.Field(i).IsNil() {
			names = append(names, strings.Split(rv.Type().Field(i).Tag.Get("json"), ",")[0])
		}
	}
	return names
}

func client(username, password string) *v2.HarborAPI {
	u, err := url.Parse(os.Getenv("HARBOR_URL"))
	if err != nil {
		panic(err)
	}
	config := harbor.Config{
		URL:       u.JoinPath("/api/v2.0"),
		Transport: recorder{http.DefaultTransport},
		AuthInfo:  httptransport.BasicAuth(username, password),
	}
	return v2.New(config.ToV2Config())
}

func main() {
	admin := client(os.Getenv("HARBOR_USERNAME"), os.Getenv("HARBOR_PASSWORD"))
	suffix := os.Getenv("HARBOR_SUFFIX")
	content := os.Getenv("HARBOR_CONTENT_PROJECT")
	attached := os.Getenv("HARBOR_ATTACHED_PROJECT")
	name := "goclient-" + suffix
	devName, devPassword := "godev-"+suffix, "Dev-Passw0rd-1"
	var projectID, devID, memberID, robotID, ruleID int64

	// system -------------------------------------------------------------
	step("ping", func(ctx context.Context) (string, error) {
		r, err := admin.Ping.GetPing(ctx, &ping.GetPingParams{})
		if err != nil {
			return "", err
		}
		if r.Payload != "Pong" {
			return "", fail("payload %q", r.Payload)
		}
		return r.Payload, nil
	})
	step("systeminfo.get", func(ctx context.Context) (string, error) {
		r, err := admin.Systeminfo.GetSystemInfo(ctx, &systeminfo.GetSystemInfoParams{})
		if err != nil {
			return "", err
		}
		if r.Payload.HarborVersion == nil || r.Payload.AuthMode == nil {
			return "", fail("no harbor_version or auth_mode")
		}
		return *r.Payload.HarborVersion, nil
	})
	step("systeminfo.volumes", func(ctx context.Context) (string, error) {
		r, err := admin.Systeminfo.GetVolumes(ctx, &systeminfo.GetVolumesParams{})
		if err != nil {
			return "", err
		}
		if len(r.Payload.Storage) != 1 || r.Payload.Storage[0].Total == 0 {
			return "", fail("storage %+v", r.Payload.Storage)
		}
		return "", nil
	})
	step("systeminfo.getcert", func(ctx context.Context) (string, error) {
		// No root certificate configured: Harbor's 404.
		_, err := admin.Systeminfo.GetCert(ctx, &systeminfo.GetCertParams{}, io.Discard)
		if _, ok := err.(*systeminfo.GetCertNotFound); !ok {
			return "", fail("want 404, got %v", err)
		}
		return "", nil
	})
	step("health.get", func(ctx context.Context) (string, error) {
		r, err := admin.Health.GetHealth(ctx, &health.GetHealthParams{})
		if err != nil {
			return "", err
		}
		return r.Payload.Status, nil
	})
	step("configurations.get", func(ctx context.Context) (string, error) {
		r, err := admin.Configure.GetConfigurations(ctx, &configure.GetConfigurationsParams{})
		if err != nil {
			return "", err
		}
		// harbor-cli's `config view` dereferences every field.
		if names := missing(r.Payload); len(names) > 0 {
			return "", fail("fields missing: %s", strings.Join(names, ","))
		}
		return r.Payload.AuthMode.Value, nil
	})
	step("configurations.update", func(ctx context.Context) (string, error) {
		_, err := admin.Configure.UpdateConfigurations(ctx, &configure.UpdateConfigurationsParams{
			Configurations: &models.Configurations{
				ProjectCreationRestriction: ptr("everyone"),
				SelfRegistration:           ptr(false),
				TokenExpiration:            ptr(int64(45)),
				BannerMessage:              ptr(""),
				OIDCVerifyCert:             ptr(true),
				LdapFilter:                 ptr(""),
				RobotTokenDuration:         ptr(int64(30)),
			},
		})
		return "", err
	})
	step("permissions.get", func(ctx context.Context) (string, error) {
		r, err := admin.Permissions.GetPermissions(ctx, &permissions.GetPermissionsParams{})
		if err != nil {
			return "", err
		}
		if len(r.Payload.Project) == 0 {
			return "", fail("no project permissions")
		}
		return "", nil
	})

	// projects and metadata -----------------------------------------------
	step("project.create", func(ctx context.Context) (string, error) {
		r, err := admin.Project.CreateProject(ctx, &project.CreateProjectParams{Project: &models.ProjectReq{
			ProjectName: name,
			Public:      ptr(false),
			Metadata:    &models.ProjectMetadata{AutoScan: ptr("true"), Severity: ptr("high")},
		}})
		if err != nil {
			return "", err
		}
		projectID = idFrom(r.Location)
		return r.Location, nil
	})
	pid := strconv.FormatInt(projectID, 10)
	step("project.head", func(ctx context.Context) (string, error) {
		_, err := admin.Project.HeadProject(ctx, &project.HeadProjectParams{ProjectName: name})
		return "", err
	})
	step("project.get_by_id", func(ctx context.Context) (string, error) {
		r, err := admin.Project.GetProject(ctx, &project.GetProjectParams{ProjectNameOrID: pid})
		if err != nil {
			return "", err
		}
		if r.Payload.Name != name || r.Payload.Metadata.Severity == nil || *r.Payload.Metadata.Severity != "high" {
			return "", fail("got %+v", r.Payload)
		}
		return "", nil
	})
	step("project.get_by_name", func(ctx context.Context) (string, error) {
		r, err := admin.Project.GetProject(ctx, &project.GetProjectParams{ProjectNameOrID: name, XIsResourceName: ptr(true)})
		if err != nil {
			return "", err
		}
		if int64(r.Payload.ProjectID) != projectID {
			return "", fail("id %d", r.Payload.ProjectID)
		}
		return "", nil
	})
	step("project.list", func(ctx context.Context) (string, error) {
		r, err := admin.Project.ListProjects(ctx, &project.ListProjectsParams{Name: ptr(name), Public: ptr(false), PageSize: ptr(int64(10))})
		if err != nil {
			return "", err
		}
		if len(r.Payload) != 1 || r.XTotalCount != 1 {
			return "", fail("%d projects, total %d", len(r.Payload), r.XTotalCount)
		}
		return "", nil
	})
	step("project.update", func(ctx context.Context) (string, error) {
		_, err := admin.Project.UpdateProject(ctx, &project.UpdateProjectParams{ProjectNameOrID: pid, Project: &models.ProjectReq{
			Metadata: &models.ProjectMetadata{PreventVul: ptr("true"), Public: "false"},
		}})
		return "", err
	})
	step("project.summary", func(ctx context.Context) (string, error) {
		_, err := admin.Project.GetProjectSummary(ctx, &project.GetProjectSummaryParams{ProjectNameOrID: pid})
		return "", err
	})
	step("project.deletable", func(ctx context.Context) (string, error) {
		r, err := admin.Project.GetProjectDeletable(ctx, &project.GetProjectDeletableParams{ProjectNameOrID: pid})
		if err != nil {
			return "", err
		}
		if !r.Payload.Deletable {
			return "", fail("not deletable: %s", r.Payload.Message)
		}
		return "", nil
	})
	step("metadata.add", func(ctx context.Context) (string, error) {
		_, err := admin.ProjectMetadata.AddProjectMetadatas(ctx, &project_metadata.AddProjectMetadatasParams{
			ProjectNameOrID: pid, Metadata: map[string]string{"enable_content_trust": "false"},
		})
		return "", err
	})
	step("metadata.list", func(ctx context.Context) (string, error) {
		r, err := admin.ProjectMetadata.ListProjectMetadatas(ctx, &project_metadata.ListProjectMetadatasParams{ProjectNameOrID: pid})
		if err != nil {
			return "", err
		}
		if r.Payload["enable_content_trust"] != "false" || r.Payload["prevent_vul"] != "true" {
			return "", fail("got %v", r.Payload)
		}
		return "", nil
	})
	step("metadata.get", func(ctx context.Context) (string, error) {
		r, err := admin.ProjectMetadata.GetProjectMetadata(ctx, &project_metadata.GetProjectMetadataParams{ProjectNameOrID: pid, MetaName: "auto_scan"})
		if err != nil {
			return "", err
		}
		if r.Payload["auto_scan"] != "true" {
			return "", fail("got %v", r.Payload)
		}
		return "", nil
	})
	step("metadata.update", func(ctx context.Context) (string, error) {
		_, err := admin.ProjectMetadata.UpdateProjectMetadata(ctx, &project_metadata.UpdateProjectMetadataParams{
			ProjectNameOrID: pid, MetaName: "auto_scan", Metadata: map[string]string{"auto_scan": "false"},
		})
		return "", err
	})
	step("metadata.delete", func(ctx context.Context) (string, error) {
		_, err := admin.ProjectMetadata.DeleteProjectMetadata(ctx, &project_metadata.DeleteProjectMetadataParams{ProjectNameOrID: pid, MetaName: "enable_content_trust"})
		return "", err
	})

	// users and members ---------------------------------------------------
	step("user.create", func(ctx context.Context) (string, error) {
		r, err := admin.User.CreateUser(ctx, &user.CreateUserParams{UserReq: &models.UserCreationReq{
			Username: devName, Password: devPassword, Email: devName + "@example.com", Realname: "Go Dev",
		}})
		if err != nil {
			return "", err
		}
		devID = idFrom(r.Location)
		return r.Location, nil
	})
	step("user.get", func(ctx context.Context) (string, error) {
		r, err := admin.User.GetUser(ctx, &user.GetUserParams{UserID: devID})
		if err != nil {
			return "", err
		}
		if r.Payload.Username != devName {
			return "", fail("got %+v", r.Payload)
		}
		return "", nil
	})
	step("user.get_missing", func(ctx context.Context) (string, error) {
		_, err := admin.User.GetUser(ctx, &user.GetUserParams{UserID: 987654})
		if nf, ok := err.(*user.GetUserNotFound); ok {
			message := nf.Payload.Errors[0].Message
			if message != "user 987654 not found" {
				return "", fail("message %q", message)
			}
			return message, nil
		}
		return "", fail("want 404, got %v", err)
	})
	step("user.list", func(ctx context.Context) (string, error) {
		r, err := admin.User.ListUsers(ctx, &user.ListUsersParams{Q: ptr("username=" + devName)})
		if err != nil {
			return "", err
		}
		return "", count(len(r.Payload), 1, "users")
	})
	step("user.search", func(ctx context.Context) (string, error) {
		r, err := admin.User.SearchUsers(ctx, &user.SearchUsersParams{Username: devName})
		if err != nil {
			return "", err
		}
		return "", count(len(r.Payload), 1, "users")
	})
	step("user.current", func(ctx context.Context) (string, error) {
		r, err := admin.User.GetCurrentUserInfo(ctx, &user.GetCurrentUserInfoParams{})
		if err != nil {
			return "", err
		}
		if !r.Payload.SysadminFlag {
			return "", fail("admin is no sysadmin")
		}
		return "", nil
	})
	step("user.current_permissions", func(ctx context.Context) (string, error) {
		_, err := admin.User.GetCurrentUserPermissions(ctx, &user.GetCurrentUserPermissionsParams{Scope: ptr("/project/" + pid), Relative: ptr(true)})
		return "", err
	})
	step("user.password", func(ctx context.Context) (string, error) {
		devPassword2 := "Dev-Passw0rd-2"
		_, err := admin.User.UpdateUserPassword(ctx, &user.UpdateUserPasswordParams{UserID: devID, Password: &models.PasswordReq{NewPassword: devPassword2}})
		if err == nil {
			devPassword = devPassword2
		}
		return "", err
	})
	step("user.cli_secret", func(ctx context.Context) (string, error) {
		// Harbor's CLI secret (docs/tokens.md): set by an administrator, then a
		// password of the user for the API.
		secret := "Dev-CliSecret-1"
		if _, err := admin.User.SetCliSecret(ctx, &user.SetCliSecretParams{UserID: devID, Secret: &models.OIDCCliSecretReq{Secret: secret}}); err != nil {
			return "", err
		}
		r, err := client(devName, secret).User.GetCurrentUserInfo(ctx, &user.GetCurrentUserInfoParams{})
		if err != nil {
			return "", err
		}
		if r.Payload.Username != devName {
			return "", fail("signed in by the CLI secret as %q", r.Payload.Username)
		}
		return r.Payload.Username, nil
	})
	step("member.create", func(ctx context.Context) (string, error) {
		r, err := admin.Member.CreateProjectMember(ctx, &member.CreateProjectMemberParams{ProjectNameOrID: pid, ProjectMember: &models.ProjectMember{
			RoleID: 3, MemberUser: &models.UserEntity{Username: devName},
		}})
		if err != nil {
			return "", err
		}
		memberID = idFrom(r.Location)
		return r.Location, nil
	})
	step("member.list", func(ctx context.Context) (string, error) {
		r, err := admin.Member.ListProjectMembers(ctx, &member.ListProjectMembersParams{ProjectNameOrID: pid, Entityname: ptr(devName)})
		if err != nil {
			return "", err
		}
		return "", count(len(r.Payload), 1, "members")
	})
	step("member.get", func(ctx context.Context) (string, error) {
		r, err := admin.Member.GetProjectMember(ctx, &member.GetProjectMemberParams{ProjectNameOrID: pid, Mid: memberID})
		if err != nil {
			return "", err
		}
		if r.Payload.EntityName != devName || r.Payload.RoleID != 3 {
			return "", fail("got %+v", r.Payload)
		}
		return "", nil
	})
	step("member.update", func(ctx context.Context) (string, error) {
		_, err := admin.Member.UpdateProjectMember(ctx, &member.UpdateProjectMemberParams{ProjectNameOrID: pid, Mid: memberID, Role: &models.RoleRequest{RoleID: 2}})
		return "", err
	})
	step("project.create_adminonly", func(ctx context.Context) (string, error) {
		// Harbor's clients match this message (harbor-cli, Harbor's API tests).
		if _, err := admin.Configure.UpdateConfigurations(ctx, &configure.UpdateConfigurationsParams{
			Configurations: &models.Configurations{ProjectCreationRestriction: ptr("adminonly")},
		}); err != nil {
			return "", err
		}
		defer admin.Configure.UpdateConfigurations(ctx, &configure.UpdateConfigurationsParams{
			Configurations: &models.Configurations{ProjectCreationRestriction: ptr("everyone")},
		})
		dev := client(devName, devPassword)
		_, err := dev.Project.CreateProject(ctx, &project.CreateProjectParams{Project: &models.ProjectReq{ProjectName: name + "-dev"}})
		// Harbor's swagger declares no 403 here: the client hands back the raw response.
		status, message := undeclared(err)
		if status != 403 || message != "Only system admin can create project" {
			return "", fail("want 403 %q, got %d %q (%v)", "Only system admin can create project", status, message, err)
		}
		return message, nil
	})
	step("member.delete", func(ctx context.Context) (string, error) {
		_, err := admin.Member.DeleteProjectMember(ctx, &member.DeleteProjectMemberParams{ProjectNameOrID: pid, Mid: memberID})
		return "", err
	})
	step("user.sysadmin", func(ctx context.Context) (string, error) {
		_, err := admin.User.SetUserSysAdmin(ctx, &user.SetUserSysAdminParams{UserID: devID, SysadminFlag: &models.UserSysAdminFlag{SysadminFlag: true}})
		return "", err
	})

	// robots ----------------------------------------------------------------
	step("robot.create", func(ctx context.Context) (string, error) {
		r, err := admin.Robot.CreateRobot(ctx, &robot.CreateRobotParams{Robot: &models.RobotCreate{
			Name: "ci", Level: "project", Duration: -1, Description: "go-client",
			Permissions: []*models.RobotPermission{{
				Kind: "project", Namespace: name,
				Access: []*models.Access{{Resource: "repository", Action: "pull"}},
			}},
		}})
		if err != nil {
			return "", err
		}
		robotID = r.Payload.ID
		if r.Payload.Secret == "" {
			return "", fail("no secret")
		}
		return r.Payload.Name, nil
	})
	step("robot.list_q", func(ctx context.Context) (string, error) {
		// As harbor-cli sends it: the q value escaped once by the caller
		// and once more by the client (Level%253Dproject%252CProjectID%253D7).
		q := url.QueryEscape("Level=project,ProjectID=" + pid)
		r, err := admin.Robot.ListRobot(ctx, &robot.ListRobotParams{Q: &q})
		if err != nil {
			return "", err
		}
		if len(r.Payload) != 1 || r.Payload[0].ID != robotID {
			return "", fail("%d robots", len(r.Payload))
		}
		return "", nil
	})
	step("robot.get", func(ctx context.Context) (string, error) {
		r, err := admin.Robot.GetRobotByID(ctx, &robot.GetRobotByIDParams{RobotID: robotID})
		if err != nil {
			return "", err
		}
		if r.Payload.Description != "go-client" {
			return "", fail("got %+v", r.Payload)
		}
		return "", nil
	})
	step("robot.update", func(ctx context.Context) (string, error) {
		current, err := admin.Robot.GetRobotByID(ctx, &robot.GetRobotByIDParams{RobotID: robotID})
		if err != nil {
			return "", err
		}
		current.Payload.Description = "updated"
		_, err = admin.Robot.UpdateRobot(ctx, &robot.UpdateRobotParams{RobotID: robotID, Robot: current.Payload})
		return "", err
	})
	step("robot.refresh_secret", func(ctx context.Context) (string, error) {
		r, err := admin.Robot.RefreshSec(ctx, &robot.RefreshSecParams{RobotID: robotID, RobotSec: &models.RobotSec{}})
		if err != nil {
			return "", err
		}
		if r.Payload.Secret == "" {
			return "", fail("no secret")
		}
		return "", nil
	})
	step("robot.delete", func(ctx context.Context) (string, error) {
		_, err := admin.Robot.DeleteRobot(ctx, &robot.DeleteRobotParams{RobotID: robotID})
		return "", err
	})

	// immutable tag rules, addressed by the project's id ---------------------
	rule := func() *models.ImmutableRule {
		return &models.ImmutableRule{
			Action: "immutable", Template: "immutable_template",
			TagSelectors: []*models.ImmutableSelector{{Kind: "doublestar", Decoration: "matches", Pattern: "v*"}},
			ScopeSelectors: map[string][]models.ImmutableSelector{
				"repository": {{Kind: "doublestar", Decoration: "repoMatches", Pattern: "**"}},
			},
		}
	}
	step("immutable.create", func(ctx context.Context) (string, error) {
		r, err := admin.Immutable.CreateImmuRule(ctx, &immutable.CreateImmuRuleParams{ProjectNameOrID: pid, ImmutableRule: rule()})
		if err != nil {
			return "", err
		}
		ruleID = idFrom(r.Location)
		return r.Location, nil
	})
	step("immutable.list", func(ctx context.Context) (string, error) {
		r, err := admin.Immutable.ListImmuRules(ctx, &immutable.ListImmuRulesParams{ProjectNameOrID: pid})
		if err != nil {
			return "", err
		}
		if len(r.Payload) != 1 || r.Payload[0].ID != ruleID {
			return "", fail("%d rules", len(r.Payload))
		}
		return "", nil
	})
	step("immutable.list_by_name", func(ctx context.Context) (string, error) {
		r, err := admin.Immutable.ListImmuRules(ctx, &immutable.ListImmuRulesParams{ProjectNameOrID: name, XIsResourceName: ptr(true)})
		if err != nil {
			return "", err
		}
		return "", count(len(r.Payload), 1, "rules")
	})
	step("immutable.update", func(ctx context.Context) (string, error) {
		updated := rule()
		updated.ID = ruleID
		updated.Disabled = true
		_, err := admin.Immutable.UpdateImmuRule(ctx, &immutable.UpdateImmuRuleParams{ProjectNameOrID: pid, ImmutableRuleID: ruleID, ImmutableRule: updated})
		return "", err
	})
	step("immutable.delete", func(ctx context.Context) (string, error) {
		_, err := admin.Immutable.DeleteImmuRule(ctx, &immutable.DeleteImmuRuleParams{ProjectNameOrID: pid, ImmutableRuleID: ruleID})
		return "", err
	})

	// repositories, artifacts, tags (content pushed by the test) -------------
	step("repository.list", func(ctx context.Context) (string, error) {
		r, err := admin.Repository.ListRepositories(ctx, &repository.ListRepositoriesParams{ProjectName: content})
		if err != nil {
			return "", err
		}
		if len(r.Payload) != 1 || r.Payload[0].Name != content+"/app" {
			return "", fail("got %d repositories", len(r.Payload))
		}
		return "", nil
	})
	step("repository.list_all", func(ctx context.Context) (string, error) {
		r, err := admin.Repository.ListAllRepositories(ctx, &repository.ListAllRepositoriesParams{Q: ptr("name=~" + content)})
		if err != nil {
			return "", err
		}
		if len(r.Payload) == 0 {
			return "", fail("no repositories")
		}
		return "", nil
	})
	step("repository.update", func(ctx context.Context) (string, error) {
		_, err := admin.Repository.UpdateRepository(ctx, &repository.UpdateRepositoryParams{ProjectName: content, RepositoryName: "app", Repository: &models.Repository{Description: "from go-client"}})
		return "", err
	})
	step("repository.get", func(ctx context.Context) (string, error) {
		r, err := admin.Repository.GetRepository(ctx, &repository.GetRepositoryParams{ProjectName: content, RepositoryName: "app"})
		if err != nil {
			return "", err
		}
		if r.Payload.Description != "from go-client" || r.Payload.ArtifactCount != 1 {
			return "", fail("got %+v", r.Payload)
		}
		return "", nil
	})
	step("artifact.list", func(ctx context.Context) (string, error) {
		r, err := admin.Artifact.ListArtifacts(ctx, &artifact.ListArtifactsParams{ProjectName: content, RepositoryName: "app", WithTag: ptr(true)})
		if err != nil {
			return "", err
		}
		if len(r.Payload) != 1 || len(r.Payload[0].Tags) != 1 || r.Payload[0].Tags[0].Name != "v1" {
			return "", fail("got %d artifacts", len(r.Payload))
		}
		return r.Payload[0].Digest, nil
	})
	step("artifact.get", func(ctx context.Context) (string, error) {
		r, err := admin.Artifact.GetArtifact(ctx, &artifact.GetArtifactParams{ProjectName: content, RepositoryName: "app", Reference: "v1"})
		if err != nil {
			return "", err
		}
		if !strings.HasPrefix(r.Payload.Digest, "sha256:") {
			return "", fail("digest %q", r.Payload.Digest)
		}
		return "", nil
	})
	step("tag.create", func(ctx context.Context) (string, error) {
		_, err := admin.Artifact.CreateTag(ctx, &artifact.CreateTagParams{ProjectName: content, RepositoryName: "app", Reference: "v1", Tag: &models.Tag{Name: "v2"}})
		return "", err
	})
	step("tag.list", func(ctx context.Context) (string, error) {
		r, err := admin.Artifact.ListTags(ctx, &artifact.ListTagsParams{ProjectName: content, RepositoryName: "app", Reference: "v1"})
		if err != nil {
			return "", err
		}
		return "", count(len(r.Payload), 2, "tags")
	})
	step("tag.delete", func(ctx context.Context) (string, error) {
		_, err := admin.Artifact.DeleteTag(ctx, &artifact.DeleteTagParams{ProjectName: content, RepositoryName: "app", Reference: "v1", TagName: "v2"})
		return "", err
	})
	step("artifact.copy", func(ctx context.Context) (string, error) {
		_, err := admin.Artifact.CopyArtifact(ctx, &artifact.CopyArtifactParams{ProjectName: name, RepositoryName: "copied", From: content + "/app:v1"})
		return "", err
	})
	// labels: a global one and one of the Go project, on its copied artifact -
	var globalLabel, projectLabel int64
	// labelled checks how many labels the copy carries (read with_label).
	labelled := func(ctx context.Context, want int) (string, error) {
		r, err := admin.Artifact.GetArtifact(ctx, &artifact.GetArtifactParams{ProjectName: name, RepositoryName: "copied", Reference: "v1", WithLabel: ptr(true)})
		if err != nil {
			return "", err
		}
		var names []string
		for _, l := range r.Payload.Labels {
			names = append(names, l.Name)
		}
		return strings.Join(names, ","), count(len(names), want, "labels")
	}
	step("label.create", func(ctx context.Context) (string, error) {
		r, err := admin.Label.CreateLabel(ctx, &label.CreateLabelParams{Label: &models.Label{
			Name: "approved-" + suffix, Color: "#00FF00", Description: "go-client", Scope: "g",
		}})
		if err != nil {
			return "", err
		}
		globalLabel = idFrom(r.Location)
		return r.Location, nil
	})
	step("label.create_project", func(ctx context.Context) (string, error) {
		r, err := admin.Label.CreateLabel(ctx, &label.CreateLabelParams{Label: &models.Label{
			Name: "stable", Scope: "p", ProjectID: projectID,
		}})
		if err != nil {
			return "", err
		}
		projectLabel = idFrom(r.Location)
		return r.Location, nil
	})
	step("label.list", func(ctx context.Context) (string, error) {
		r, err := admin.Label.ListLabels(ctx, &label.ListLabelsParams{Scope: ptr("g"), Name: ptr("approved-" + suffix)})
		if err != nil {
			return "", err
		}
		if len(r.Payload) != 1 || r.Payload[0].ID != globalLabel || r.XTotalCount != 1 {
			return "", fail("%d labels, total %d", len(r.Payload), r.XTotalCount)
		}
		return "", nil
	})
	step("label.list_project", func(ctx context.Context) (string, error) {
		r, err := admin.Label.ListLabels(ctx, &label.ListLabelsParams{Scope: ptr("p"), ProjectID: ptr(projectID)})
		if err != nil {
			return "", err
		}
		if len(r.Payload) != 1 || r.Payload[0].ID != projectLabel || r.Payload[0].ProjectID != projectID {
			return "", fail("got %d labels", len(r.Payload))
		}
		return "", nil
	})
	step("label.get", func(ctx context.Context) (string, error) {
		r, err := admin.Label.GetLabelByID(ctx, &label.GetLabelByIDParams{LabelID: globalLabel})
		if err != nil {
			return "", err
		}
		if r.Payload.Scope != "g" || r.Payload.Color != "#00FF00" || r.Payload.Description != "go-client" {
			return "", fail("got %+v", r.Payload)
		}
		return "", nil
	})
	step("label.update", func(ctx context.Context) (string, error) {
		current, err := admin.Label.GetLabelByID(ctx, &label.GetLabelByIDParams{LabelID: globalLabel})
		if err != nil {
			return "", err
		}
		current.Payload.Color = "#0000FF"
		if _, err := admin.Label.UpdateLabel(ctx, &label.UpdateLabelParams{LabelID: globalLabel, Label: current.Payload}); err != nil {
			return "", err
		}
		r, err := admin.Label.GetLabelByID(ctx, &label.GetLabelByIDParams{LabelID: globalLabel})
		if err != nil {
			return "", err
		}
		if r.Payload.Color != "#0000FF" {
			return "", fail("color %q", r.Payload.Color)
		}
		return "", nil
	})
	step("artifact.add_label", func(ctx context.Context) (string, error) {
		for _, id := range []int64{globalLabel, projectLabel} {
			if _, err := admin.Artifact.AddLabel(ctx, &artifact.AddLabelParams{ProjectName: name, RepositoryName: "copied", Reference: "v1", Label: &models.Label{ID: id}}); err != nil {
				return "", err
			}
		}
		return labelled(ctx, 2)
	})
	step("artifact.add_label_foreign", func(ctx context.Context) (string, error) {
		// The Go project's label on the content project's artifact: not found.
		_, err := admin.Artifact.AddLabel(ctx, &artifact.AddLabelParams{ProjectName: content, RepositoryName: "app", Reference: "v1", Label: &models.Label{ID: projectLabel}})
		if _, ok := err.(*artifact.AddLabelNotFound); !ok {
			return "", fail("want 404, got %v", err)
		}
		return "", nil
	})
	step("artifact.list_by_label", func(ctx context.Context) (string, error) {
		q := fmt.Sprintf("labels=(%d %d)", globalLabel, projectLabel)
		r, err := admin.Artifact.ListArtifacts(ctx, &artifact.ListArtifactsParams{ProjectName: name, RepositoryName: "copied", Q: &q, WithLabel: ptr(true)})
		if err != nil {
			return "", err
		}
		if len(r.Payload) != 1 || len(r.Payload[0].Labels) != 2 {
			return "", fail("got %d artifacts", len(r.Payload))
		}
		return "", nil
	})
	step("artifact.remove_label", func(ctx context.Context) (string, error) {
		if _, err := admin.Artifact.RemoveLabel(ctx, &artifact.RemoveLabelParams{ProjectName: name, RepositoryName: "copied", Reference: "v1", LabelID: projectLabel}); err != nil {
			return "", err
		}
		return labelled(ctx, 1)
	})
	step("label.delete", func(ctx context.Context) (string, error) {
		if _, err := admin.Label.DeleteLabel(ctx, &label.DeleteLabelParams{LabelID: globalLabel}); err != nil {
			return "", err
		}
		return labelled(ctx, 0)
	})
	step("artifact.delete", func(ctx context.Context) (string, error) {
		_, err := admin.Artifact.DeleteArtifact(ctx, &artifact.DeleteArtifactParams{ProjectName: name, RepositoryName: "copied", Reference: "v1"})
		return "", err
	})
	step("repository.delete", func(ctx context.Context) (string, error) {
		_, err := admin.Repository.DeleteRepository(ctx, &repository.DeleteRepositoryParams{ProjectName: name, RepositoryName: "copied"})
		return "", err
	})

	// a project's artifacts, accessories and additions ----------------------
	step("project.artifacts", func(ctx context.Context) (string, error) {
		r, err := admin.Project.ListArtifactsOfProject(ctx, &project.ListArtifactsOfProjectParams{
			ProjectNameOrID: attached, XIsResourceName: ptr(true), Q: ptr("tags=v1"), WithAccessory: ptr(true),
		})
		if err != nil {
			return "", err
		}
		if len(r.Payload) != 1 || len(r.Payload[0].Accessories) != 1 {
			return "", fail("got %d artifacts", len(r.Payload))
		}
		if kind := r.Payload[0].Accessories[0].Type; kind != "signature.notation" {
			return "", fail("accessory type %q", kind)
		}
		return r.Payload[0].RepositoryName, nil
	})
	step("artifact.accessories", func(ctx context.Context) (string, error) {
		r, err := admin.Artifact.ListAccessories(ctx, &artifact.ListAccessoriesParams{ProjectName: attached, RepositoryName: "app", Reference: "v1"})
		if err != nil {
			return "", err
		}
		if len(r.Payload) != 1 || r.Payload[0].SubjectArtifactRepo != attached+"/app" {
			return "", fail("got %d accessories", len(r.Payload))
		}
		return r.Payload[0].Type, nil
	})
	step("artifact.addition", func(ctx context.Context) (string, error) {
		r, err := admin.Artifact.GetAddition(ctx, &artifact.GetAdditionParams{ProjectName: attached, RepositoryName: "chart", Reference: "0.1.0", Addition: "values.yaml"})
		if err != nil {
			return "", err
		}
		if r.Payload != os.Getenv("HARBOR_CHART_VALUES") {
			return "", fail("values.yaml %q", r.Payload)
		}
		return "", nil
	})

	// overviews --------------------------------------------------------------
	step("statistics.get", func(ctx context.Context) (string, error) {
		r, err := admin.Statistic.GetStatistic(ctx, &statistic.GetStatisticParams{})
		if err != nil {
			return "", err
		}
		if r.Payload.TotalProjectCount < 2 {
			return "", fail("%d projects", r.Payload.TotalProjectCount)
		}
		return "", nil
	})
	step("search", func(ctx context.Context) (string, error) {
		r, err := admin.Search.Search(ctx, &search.SearchParams{Q: name})
		if err != nil {
			return "", err
		}
		return "", count(len(r.Payload.Project), 1, "projects")
	})
	var quotaID int64
	step("quota.list", func(ctx context.Context) (string, error) {
		r, err := admin.Quota.ListQuotas(ctx, &quota.ListQuotasParams{Reference: ptr("project"), ReferenceID: ptr(pid)})
		if err != nil {
			return "", err
		}
		if len(r.Payload) != 1 {
			return "", fail("%d quotas", len(r.Payload))
		}
		quotaID = r.Payload[0].ID
		return "", nil
	})
	step("quota.get", func(ctx context.Context) (string, error) {
		_, err := admin.Quota.GetQuota(ctx, &quota.GetQuotaParams{ID: quotaID})
		return "", err
	})
	step("quota.update", func(ctx context.Context) (string, error) {
		_, err := admin.Quota.UpdateQuota(ctx, &quota.UpdateQuotaParams{ID: quotaID, Hard: &models.QuotaUpdateReq{
			Hard: models.ResourceList{"storage": 5 << 30},
		}})
		return "", err
	})
	step("quota.get_hard", func(ctx context.Context) (string, error) {
		r, err := admin.Quota.GetQuota(ctx, &quota.GetQuotaParams{ID: quotaID})
		if err != nil {
			return "", err
		}
		if r.Payload.Hard["storage"] != 5<<30 {
			return "", fail("hard %v", r.Payload.Hard)
		}
		return "", nil
	})
	// Tag retention (harbor-cli and Terraform's resources drive these calls).
	policy := func(cron string, templates ...string) *models.RetentionPolicy {
		rules := []*models.RetentionRule{}
		for _, t := range templates {
			params := map[string]interface{}{}
			if t == "latestPushedK" {
				params[t] = 3
			}
			rules = append(rules, &models.RetentionRule{
				Action: "retain", Template: t, Params: params,
				TagSelectors: []*models.RetentionSelector{{Kind: "doublestar", Decoration: "matches", Pattern: "**", Extras: `{"untagged":true}`}},
				ScopeSelectors: map[string][]models.RetentionSelector{
					"repository": {{Kind: "doublestar", Decoration: "repoMatches", Pattern: "**"}},
				},
			})
		}
		return &models.RetentionPolicy{
			Algorithm: "or", Rules: rules,
			Trigger: &models.RetentionRuleTrigger{Kind: "Schedule", Settings: map[string]string{"cron": cron}},
			Scope:   &models.RetentionPolicyScope{Level: "project", Ref: projectID},
		}
	}
	var retentionID, executionID int64
	step("retention.metadata", func(ctx context.Context) (string, error) {
		r, err := admin.Retention.GetRentenitionMetadata(ctx, &retention.GetRentenitionMetadataParams{})
		if err != nil {
			return "", err
		}
		return "", count(len(r.Payload.Templates), 6, "templates")
	})
	step("retention.create", func(ctx context.Context) (string, error) {
		r, err := admin.Retention.CreateRetention(ctx, &retention.CreateRetentionParams{Policy: policy("0 0 0 * * *", "latestPushedK")})
		if err != nil {
			return "", err
		}
		retentionID = idFrom(r.Location)
		return r.Location, nil
	})
	step("retention.get", func(ctx context.Context) (string, error) {
		r, err := admin.Retention.GetRetention(ctx, &retention.GetRetentionParams{ID: retentionID})
		if err != nil {
			return "", err
		}
		if r.Payload.Scope.Ref != projectID || len(r.Payload.Rules) != 1 || r.Payload.Rules[0].Template != "latestPushedK" {
			return "", fail("policy %+v", r.Payload)
		}
		return "", nil
	})
	step("retention.update", func(ctx context.Context) (string, error) {
		_, err := admin.Retention.UpdateRetention(ctx, &retention.UpdateRetentionParams{ID: retentionID, Policy: policy("0 0 * * * *", "latestPushedK", "always")})
		if err != nil {
			return "", err
		}
		r, err := admin.Retention.GetRetention(ctx, &retention.GetRetentionParams{ID: retentionID})
		if err != nil {
			return "", err
		}
		return "", count(len(r.Payload.Rules), 2, "rules")
	})
	step("retention.trigger", func(ctx context.Context) (string, error) {
		_, created, err := admin.Retention.TriggerRetentionExecution(ctx, &retention.TriggerRetentionExecutionParams{ID: retentionID, Body: retention.TriggerRetentionExecutionBody{DryRun: true}})
		if err != nil {
			return "", err
		}
		if created == nil {
			return "", fail("no 201")
		}
		executionID = idFrom(created.Location)
		return created.Location, nil
	})
	step("retention.executions", func(ctx context.Context) (string, error) {
		r, err := admin.Retention.ListRetentionExecutions(ctx, &retention.ListRetentionExecutionsParams{ID: retentionID})
		if err != nil {
			return "", err
		}
		if len(r.Payload) != 1 || r.Payload[0].ID != executionID || !r.Payload[0].DryRun {
			return "", fail("executions %+v", r.Payload)
		}
		return r.Payload[0].Status, nil
	})
	step("retention.stop", func(ctx context.Context) (string, error) {
		// No worker runs beside this server: the run is still Pending and stops at once.
		_, err := admin.Retention.OperateRetentionExecution(ctx, &retention.OperateRetentionExecutionParams{ID: retentionID, Eid: executionID, Body: retention.OperateRetentionExecutionBody{Action: "stop"}})
		if err != nil {
			return "", err
		}
		r, err := admin.Retention.ListRetentionExecutions(ctx, &retention.ListRetentionExecutionsParams{ID: retentionID})
		if err != nil {
			return "", err
		}
		if r.Payload[0].Status != "Stopped" {
			return "", fail("status %s", r.Payload[0].Status)
		}
		return "", nil
	})
	step("retention.tasks", func(ctx context.Context) (string, error) {
		r, err := admin.Retention.ListRetentionTasks(ctx, &retention.ListRetentionTasksParams{ID: retentionID, Eid: executionID})
		if err != nil {
			return "", err
		}
		return "", count(len(r.Payload), 0, "tasks of a run stopped before it started")
	})
	step("retention.delete", func(ctx context.Context) (string, error) {
		_, err := admin.Retention.DeleteRetention(ctx, &retention.DeleteRetentionParams{ID: retentionID})
		return "", err
	})
	step("auditlog.list", func(ctx context.Context) (string, error) {
		// harbor-cli escapes q itself before the client escapes it again.
		q := url.QueryEscape("resource=~" + name)
		r, err := admin.Auditlog.ListAuditLogs(ctx, &auditlog.ListAuditLogsParams{Q: &q, Sort: ptr("-op_time")})
		if err != nil {
			return "", err
		}
		if len(r.Payload) == 0 {
			return "", fail("no audit logs")
		}
		return "", nil
	})
	step("auditlog.list_exts", func(ctx context.Context) (string, error) {
		_, err := admin.Auditlog.ListAuditLogExts(ctx, &auditlog.ListAuditLogExtsParams{})
		return "", err
	})
	step("auditlog.event_types", func(ctx context.Context) (string, error) {
		r, err := admin.Auditlog.ListAuditLogEventTypes(ctx, &auditlog.ListAuditLogEventTypesParams{})
		if err != nil {
			return "", err
		}
		for _, t := range r.Payload {
			if t.EventType == "update_quota" {
				return "", nil
			}
		}
		return "", fail("no update_quota among %d event types", len(r.Payload))
	})
	step("project.logs", func(ctx context.Context) (string, error) {
		r, err := admin.Project.GetLogs(ctx, &project.GetLogsParams{ProjectName: name})
		if err != nil {
			return "", err
		}
		if len(r.Payload) == 0 {
			return "", fail("no logs")
		}
		return "", nil
	})

	// garbage collection (as Harbor's Terraform provider drives it) -----------
	gcParams := map[string]interface{}{"delete_untagged": true, "workers": 2, "dry_run": true}
	step("gc.schedule_update", func(ctx context.Context) (string, error) {
		_, err := admin.GC.UpdateGCSchedule(ctx, &gc.UpdateGCScheduleParams{Schedule: &models.Schedule{
			Schedule: &models.ScheduleObj{Type: "Weekly", Cron: "0 0 0 * * 0"}, Parameters: gcParams,
		}})
		return "", err
	})
	step("gc.schedule_get", func(ctx context.Context) (string, error) {
		r, err := admin.GC.GetGCSchedule(ctx, &gc.GetGCScheduleParams{})
		if err != nil {
			return "", err
		}
		if r.Payload.Schedule == nil || r.Payload.Schedule.Type != "Weekly" || r.Payload.Schedule.Cron != "0 0 0 * * 0" {
			return "", fail("schedule %+v", r.Payload.Schedule)
		}
		var params map[string]interface{}
		if err := json.Unmarshal([]byte(r.Payload.JobParameters), &params); err != nil || params["workers"] != float64(2) {
			return "", fail("job_parameters %q", r.Payload.JobParameters)
		}
		return "", nil
	})
	step("gc.schedule_bad_cron", func(ctx context.Context) (string, error) {
		_, err := admin.GC.UpdateGCSchedule(ctx, &gc.UpdateGCScheduleParams{Schedule: &models.Schedule{
			Schedule: &models.ScheduleObj{Type: "Custom", Cron: "0 0 25 * * *"},
		}})
		if _, ok := err.(*gc.UpdateGCScheduleBadRequest); !ok {
			return "", fail("want 400, got %v", err)
		}
		return "", nil
	})
	var gcID int64
	step("gc.run", func(ctx context.Context) (string, error) {
		r, err := admin.GC.CreateGCSchedule(ctx, &gc.CreateGCScheduleParams{Schedule: &models.Schedule{
			Schedule: &models.ScheduleObj{Type: "Manual"}, Parameters: gcParams,
		}})
		if err != nil {
			return "", err
		}
		parts := strings.Split(r.Location, "/")
		gcID, err = strconv.ParseInt(parts[len(parts)-1], 10, 64)
		return r.Location, err
	})
	step("gc.get", func(ctx context.Context) (string, error) {
		r, err := admin.GC.GetGC(ctx, &gc.GetGCParams{GCID: gcID})
		if err != nil {
			return "", err
		}
		if r.Payload.ID != gcID || r.Payload.JobName != "GARBAGE_COLLECTION" {
			return "", fail("run %+v", r.Payload)
		}
		return r.Payload.JobStatus, nil
	})
	step("gc.stop", func(ctx context.Context) (string, error) {
		_, err := admin.GC.StopGC(ctx, &gc.StopGCParams{GCID: gcID})
		return "", err
	})
	step("gc.history", func(ctx context.Context) (string, error) {
		r, err := admin.GC.GetGCHistory(ctx, &gc.GetGCHistoryParams{})
		if err != nil {
			return "", err
		}
		if len(r.Payload) == 0 || r.Payload[0].ID != gcID {
			return "", fail("%d runs", len(r.Payload))
		}
		return "", nil
	})
	step("gc.log", func(ctx context.Context) (string, error) {
		_, err := admin.GC.GetGCLog(ctx, &gc.GetGCLogParams{GCID: gcID})
		return "", err
	})

	// clean up ----------------------------------------------------------------
	step("user.delete", func(ctx context.Context) (string, error) {
		_, err := admin.User.DeleteUser(ctx, &user.DeleteUserParams{UserID: devID})
		return "", err
	})
	step("project.delete", func(ctx context.Context) (string, error) {
		_, err := admin.Project.DeleteProject(ctx, &project.DeleteProjectParams{ProjectNameOrID: pid})
		return "", err
	})
}
