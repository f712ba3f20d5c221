package e2e

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
)

func web(family string) *ecs.RegisterTaskDefinitionInput {
	return &ecs.RegisterTaskDefinitionInput{
		Family: aws.String(family),
		ContainerDefinitions: []types.ContainerDefinition{{
			Name:         aws.String("web"),
			Image:        aws.String("nginx:latest"),
			Memory:       aws.Int32(128),
			PortMappings: []types.PortMapping{{ContainerPort: aws.Int32(80)}},
		}},
	}
}

func TestRegisterTaskDefinition(t *testing.T) {
	b := startBerth(t)
	c := b.ecsClient()
	before := time.Now().Add(-time.Second)
	in := &ecs.RegisterTaskDefinitionInput{
		Family:                  aws.String("app"),
		NetworkMode:             types.NetworkModeAwsvpc,
		Cpu:                     aws.String("1 vCPU"),
		Memory:                  aws.String("2 GB"),
		TaskRoleArn:             aws.String("arn:aws:iam::000000000000:role/app"),
		RequiresCompatibilities: []types.Compatibility{types.CompatibilityFargate},
		Tags:                    []types.Tag{{Key: aws.String("tier"), Value: aws.String("front")}},
		Volumes:                 []types.Volume{{Name: aws.String("scratch")}},
		ContainerDefinitions: []types.ContainerDefinition{
			{
				Name:             aws.String("app"),
				Image:            aws.String("example/app:1"),
				Cpu:              512,
				Command:          []string{"serve", "--port", "8080"},
				Environment:      []types.KeyValuePair{{Name: aws.String("MODE"), Value: aws.String("prod")}},
				PortMappings:     []types.PortMapping{{ContainerPort: aws.Int32(8080)}},
				MountPoints:      []types.MountPoint{{SourceVolume: aws.String("scratch"), ContainerPath: aws.String("/tmp/s")}},
				HealthCheck:      &types.HealthCheck{Command: []string{"CMD-SHELL", "curl -f localhost:8080/health"}},
				DependsOn:        []types.ContainerDependency{{ContainerName: aws.String("sidecar"), Condition: types.ContainerConditionStart}},
				DockerLabels:     map[string]string{"a": "b"},
				Ulimits:          []types.Ulimit{{Name: types.UlimitNameNofile, SoftLimit: 1024, HardLimit: 2048}},
				LogConfiguration: &types.LogConfiguration{LogDriver: types.LogDriverJsonFile, Options: map[string]string{"max-size": "10m"}},
				StopTimeout:      aws.Int32(20),
			},
			{Name: aws.String("sidecar"), Image: aws.String("example/sidecar:1"), Essential: aws.Bool(false), MemoryReservation: aws.Int32(64)},
		},
	}
	out := must[*ecs.RegisterTaskDefinitionOutput](t)(c.RegisterTaskDefinition(ctx(t), in))
	td := out.TaskDefinition
	if aws.ToString(td.TaskDefinitionArn) != "arn:aws:ecs:us-east-1:000000000000:task-definition/app:1" || td.Revision != 1 {
		t.Fatalf("arn %q revision %d", aws.ToString(td.TaskDefinitionArn), td.Revision)
	}
	if td.Status != types.TaskDefinitionStatusActive || aws.ToString(td.Cpu) != "1024" || aws.ToString(td.Memory) != "2048" {
		t.Fatalf("status %q cpu %q memory %q", td.Status, aws.ToString(td.Cpu), aws.ToString(td.Memory))
	}
	if aws.ToString(td.RegisteredBy) != "arn:aws:iam::000000000000:root" || td.RegisteredAt == nil || td.RegisteredAt.Before(before) || td.RegisteredAt.After(time.Now().Add(time.Second)) {
		t.Fatalf("registeredBy %q at %v", aws.ToString(td.RegisteredBy), td.RegisteredAt)
	}
	if !slices.Equal(td.Compatibilities, []types.Compatibility{types.CompatibilityEc2, types.CompatibilityFargate}) {
		t.Fatalf("compatibilities %v", td.Compatibilities)
	}
	var attrs []string
	for _, a := range td.RequiresAttributes {
		attrs = append(attrs, aws.ToString(a.Name))
	}
	for _, want := range []string{"ecs.capability.task-eni", "ecs.capability.container-health-check", "ecs.capability.container-ordering", "com.amazonaws.ecs.capability.task-iam-role"} {
		if !slices.Contains(attrs, want) {
			t.Fatalf("requiresAttributes %v lacks %s", attrs, want)
		}
	}
	app := td.ContainerDefinitions[0]
	if !aws.ToBool(app.Essential) || aws.ToBool(td.ContainerDefinitions[1].Essential) {
		t.Fatalf("essential defaults: %v %v", app.Essential, td.ContainerDefinitions[1].Essential)
	}
	if pm := app.PortMappings[0]; aws.ToInt32(pm.HostPort) != 8080 || pm.Protocol != types.TransportProtocolTcp {
		t.Fatalf("awsvpc port mapping not normalised: %+v", pm)
	}
	if hc := app.HealthCheck; aws.ToInt32(hc.Interval) != 30 || aws.ToInt32(hc.Timeout) != 5 || aws.ToInt32(hc.Retries) != 3 {
		t.Fatalf("health check defaults: %+v", hc)
	}
	if app.Cpu != 512 || aws.ToInt32(app.StopTimeout) != 20 || app.LogConfiguration.Options["max-size"] != "10m" || app.DockerLabels["a"] != "b" || app.Ulimits[0].HardLimit != 2048 {
		t.Fatalf("container fields not stored: %+v", app)
	}
	if len(out.Tags) != 1 {
		t.Fatalf("tags: %+v", out.Tags)
	}

	second := must[*ecs.RegisterTaskDefinitionOutput](t)(c.RegisterTaskDefinition(ctx(t), web("app")))
	if second.TaskDefinition.Revision != 2 {
		t.Fatalf("second revision %d", second.TaskDefinition.Revision)
	}
	if got := second.TaskDefinition.Compatibilities; !slices.Equal(got, []types.Compatibility{types.CompatibilityExternal, types.CompatibilityEc2}) {
		t.Fatalf("bridge-mode compatibilities %v", got)
	}
	// Describe returns exactly what was stored, by family, family:revision and ARN.
	for _, ref := range []string{"app:1", "arn:aws:ecs:us-east-1:000000000000:task-definition/app:1"} {
		d := must[*ecs.DescribeTaskDefinitionOutput](t)(c.DescribeTaskDefinition(ctx(t), &ecs.DescribeTaskDefinitionInput{TaskDefinition: aws.String(ref), Include: []types.TaskDefinitionField{types.TaskDefinitionFieldTags}}))
		if d.TaskDefinition.Revision != 1 || d.TaskDefinition.ContainerDefinitions[0].Command[2] != "8080" {
			t.Fatalf("describe %s: revision %d", ref, d.TaskDefinition.Revision)
		}
		if len(d.Tags) != 1 || aws.ToString(d.Tags[0].Value) != "front" {
			t.Fatalf("describe %s with TAGS: %+v", ref, d.Tags)
		}
	}
	latest := must[*ecs.DescribeTaskDefinitionOutput](t)(c.DescribeTaskDefinition(ctx(t), &ecs.DescribeTaskDefinitionInput{TaskDefinition: aws.String("app")}))
	if latest.TaskDefinition.Revision != 2 || len(latest.Tags) != 0 {
		t.Fatalf("describe family: revision %d tags %v", latest.TaskDefinition.Revision, latest.Tags)
	}
	for _, ref := range []string{"app:3", "nope", "arn:aws:ecs:us-east-1:000000000000:task-definition/app", "app:zero"} {
		_, err := c.DescribeTaskDefinition(ctx(t), &ecs.DescribeTaskDefinitionInput{TaskDefinition: aws.String(ref)})
		if e := wantErr[*types.ClientException](t, err); e.ErrorMessage() != "Unable to describe task definition." {
			t.Fatalf("describe %s: %q", ref, e.ErrorMessage())
		}
	}
}

// fargate makes a valid Fargate task definition of in.
func fargate(in *ecs.RegisterTaskDefinitionInput) {
	in.RequiresCompatibilities = []types.Compatibility{types.CompatibilityFargate}
	in.NetworkMode = types.NetworkModeAwsvpc
	in.Cpu, in.Memory = aws.String("256"), aws.String("512")
}

func TestRegisterTaskDefinitionRules(t *testing.T) {
	b := startBerth(t)
	c := b.ecsClient()
	container := func(name string) types.ContainerDefinition {
		return types.ContainerDefinition{Name: aws.String(name), Image: aws.String("img"), Memory: aws.Int32(64)}
	}
	tooMany := web("x")
	for i := 0; i < 10; i++ {
		tooMany.ContainerDefinitions = append(tooMany.ContainerDefinitions, container(fmt.Sprintf("c%d", i)))
	}
	huge := web("x")
	huge.ContainerDefinitions[0].Command = []string{strings.Repeat("x", 70<<10)}
	cases := []struct {
		name   string
		mutate func(*ecs.RegisterTaskDefinitionInput)
		in     *ecs.RegisterTaskDefinitionInput
		want   string
	}{
		{name: "eleven containers", in: tooMany, want: "between 1 and 10"},
		{name: "64 KiB", in: huge, want: "65536"},
		{name: "bad family", mutate: func(in *ecs.RegisterTaskDefinitionInput) { in.Family = aws.String("a/b") }, want: "Family name"},
		{name: "duplicate names", mutate: func(in *ecs.RegisterTaskDefinitionInput) {
			in.ContainerDefinitions = append(in.ContainerDefinitions, container("web"))
		}, want: "unique"},
		{name: "no image", mutate: func(in *ecs.RegisterTaskDefinitionInput) { in.ContainerDefinitions[0].Image = nil }, want: "image"},
		{name: "no memory anywhere", mutate: func(in *ecs.RegisterTaskDefinitionInput) { in.ContainerDefinitions[0].Memory = nil }, want: "At least one of 'memory' or 'memoryReservation'"},
		{name: "reservation above limit", mutate: func(in *ecs.RegisterTaskDefinitionInput) {
			in.ContainerDefinitions[0].MemoryReservation = aws.Int32(256)
		}, want: "greater than or equal to 'memoryReservation'"},
		{name: "tiny memory", mutate: func(in *ecs.RegisterTaskDefinitionInput) { in.ContainerDefinitions[0].Memory = aws.Int32(2) }, want: "at least 6 MiB"},
		{name: "container exceeds task memory", mutate: func(in *ecs.RegisterTaskDefinitionInput) { in.Memory = aws.String("64") }, want: "The 'memory' setting for container 'web' is greater than for the task."},
		{name: "reservations exceed task memory", mutate: func(in *ecs.RegisterTaskDefinitionInput) {
			in.Memory = aws.String("200")
			in.ContainerDefinitions = append(in.ContainerDefinitions, types.ContainerDefinition{Name: aws.String("side"), Image: aws.String("i"), MemoryReservation: aws.Int32(100)})
		}, want: "memory reserved by the containers (228 MiB"},
		{name: "secrets need an execution role", mutate: func(in *ecs.RegisterTaskDefinitionInput) {
			in.ContainerDefinitions[0].Secrets = []types.Secret{{Name: aws.String("DB"), ValueFrom: aws.String("arn:aws:secretsmanager:us-east-1:000000000000:secret:db")}}
		}, want: "you must also specify a value for 'executionRoleArn'"},
		{name: "hostname with awsvpc", mutate: func(in *ecs.RegisterTaskDefinitionInput) {
			in.NetworkMode = types.NetworkModeAwsvpc
			in.ContainerDefinitions[0].PortMappings = nil
			in.ContainerDefinitions[0].Hostname = aws.String("web")
		}, want: "hostname is not supported on container when networkMode=awsvpc."},
		{name: "containers exceed task cpu", mutate: func(in *ecs.RegisterTaskDefinitionInput) {
			in.Cpu = aws.String("256")
			in.ContainerDefinitions[0].Cpu = 512
		}, want: "task cpu"},
		{name: "task cpu out of range", mutate: func(in *ecs.RegisterTaskDefinitionInput) { in.Cpu = aws.String("64") }, want: "128 to 196608"},
		{name: "unparseable memory", mutate: func(in *ecs.RegisterTaskDefinitionInput) { in.Memory = aws.String("lots") }, want: "'memory'"},
		{name: "awsvpc host port differs", mutate: func(in *ecs.RegisterTaskDefinitionInput) {
			in.NetworkMode = types.NetworkModeAwsvpc
			in.ContainerDefinitions[0].PortMappings[0].HostPort = aws.Int32(8080)
		}, want: "must match"},
		{name: "ports with none", mutate: func(in *ecs.RegisterTaskDefinitionInput) { in.NetworkMode = types.NetworkModeNone }, want: "networkMode is none"},
		{name: "fargate needs awsvpc", mutate: func(in *ecs.RegisterTaskDefinitionInput) {
			in.RequiresCompatibilities = []types.Compatibility{types.CompatibilityFargate}
			in.Cpu, in.Memory = aws.String("256"), aws.String("512")
		}, want: "Fargate only supports network mode \u2018awsvpc\u2019."},
		{name: "fargate ipcMode", mutate: func(in *ecs.RegisterTaskDefinitionInput) {
			fargate(in)
			in.IpcMode = types.IpcModeHost
		}, want: "Tasks using the Fargate launch type do not support ipcMode."},
		{name: "fargate placement constraints", mutate: func(in *ecs.RegisterTaskDefinitionInput) {
			fargate(in)
			in.PlacementConstraints = []types.TaskDefinitionPlacementConstraint{{Type: types.TaskDefinitionPlacementConstraintTypeMemberOf, Expression: aws.String("attribute:x == y")}}
		}, want: "Fargate does not support task placement constraints."},
		{name: "fargate host volume", mutate: func(in *ecs.RegisterTaskDefinitionInput) {
			fargate(in)
			in.Volumes = []types.Volume{{Name: aws.String("v"), Host: &types.HostVolumeProperties{SourcePath: aws.String("/data")}}}
		}, want: "host.sourcePath should not be set for volumes in Fargate."},
		{name: "fargate awslogs without execution role", mutate: func(in *ecs.RegisterTaskDefinitionInput) {
			fargate(in)
			in.ContainerDefinitions[0].LogConfiguration = &types.LogConfiguration{LogDriver: types.LogDriverAwslogs}
		}, want: "Fargate requires task definition to have execution role ARN to support log driver awslogs."},
		{name: "fargate size", mutate: func(in *ecs.RegisterTaskDefinitionInput) {
			in.RequiresCompatibilities = []types.Compatibility{types.CompatibilityFargate}
			in.NetworkMode = types.NetworkModeAwsvpc
			in.Cpu, in.Memory = aws.String("256"), aws.String("8192")
		}, want: "No Fargate configuration exists for given values: 256 CPU, 8192 memory"},
		{name: "fargate without cpu", mutate: func(in *ecs.RegisterTaskDefinitionInput) {
			in.RequiresCompatibilities = []types.Compatibility{types.CompatibilityFargate}
			in.NetworkMode = types.NetworkModeAwsvpc
			in.Memory = aws.String("512")
		}, want: "Fargate requires that 'cpu' be defined at the task level."},
		{name: "fargate without memory", mutate: func(in *ecs.RegisterTaskDefinitionInput) {
			in.RequiresCompatibilities = []types.Compatibility{types.CompatibilityFargate}
			in.NetworkMode = types.NetworkModeAwsvpc
			in.Cpu = aws.String("256")
		}, want: "Fargate requires that 'memory' be defined at the task level."},
		{name: "unknown volume", mutate: func(in *ecs.RegisterTaskDefinitionInput) {
			in.ContainerDefinitions[0].MountPoints = []types.MountPoint{{SourceVolume: aws.String("data"), ContainerPath: aws.String("/d")}}
		}, want: "Unknown volume 'data'"},
		{name: "depends on unknown", mutate: func(in *ecs.RegisterTaskDefinitionInput) {
			in.ContainerDefinitions[0].DependsOn = []types.ContainerDependency{{ContainerName: aws.String("db"), Condition: types.ContainerConditionStart}}
		}, want: "dependsOn names container 'db'"},
		{name: "dependency cycle", mutate: func(in *ecs.RegisterTaskDefinitionInput) {
			a, b := container("a"), container("b")
			a.DependsOn = []types.ContainerDependency{{ContainerName: aws.String("b"), Condition: types.ContainerConditionStart}}
			b.DependsOn = []types.ContainerDependency{{ContainerName: aws.String("a"), Condition: types.ContainerConditionStart}}
			in.ContainerDefinitions = append(in.ContainerDefinitions, a, b)
		}, want: "cycle"},
		{name: "healthy without health check", mutate: func(in *ecs.RegisterTaskDefinitionInput) {
			db := container("db")
			in.ContainerDefinitions[0].DependsOn = []types.ContainerDependency{{ContainerName: aws.String("db"), Condition: types.ContainerConditionHealthy}}
			in.ContainerDefinitions = append(in.ContainerDefinitions, db)
		}, want: "no health check"},
		{name: "health check range", mutate: func(in *ecs.RegisterTaskDefinitionInput) {
			in.ContainerDefinitions[0].HealthCheck = &types.HealthCheck{Command: []string{"CMD", "true"}, Interval: aws.Int32(1)}
		}, want: "'interval' must be between 5 and 300"},
		{name: "no essential container", mutate: func(in *ecs.RegisterTaskDefinitionInput) { in.ContainerDefinitions[0].Essential = aws.Bool(false) }, want: "essential"},
		{name: "links outside bridge", mutate: func(in *ecs.RegisterTaskDefinitionInput) {
			in.NetworkMode = types.NetworkModeHost
			in.ContainerDefinitions[0].Links = []string{"db"}
		}, want: "Links"},
		{name: "host port twice", mutate: func(in *ecs.RegisterTaskDefinitionInput) {
			in.ContainerDefinitions[0].PortMappings = []types.PortMapping{{ContainerPort: aws.Int32(80), HostPort: aws.Int32(8080)}, {ContainerPort: aws.Int32(81), HostPort: aws.Int32(8080)}}
		}, want: "mapped twice"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			in := tc.in
			if in == nil {
				in = web("rules")
				tc.mutate(in)
			}
			_, err := c.RegisterTaskDefinition(ctx(t), in)
			e := wantErr[*types.ClientException](t, err)
			if !strings.Contains(e.ErrorMessage(), tc.want) {
				t.Fatalf("message %q does not mention %q", e.ErrorMessage(), tc.want)
			}
		})
	}
	// Model validation (enum, required members) answers InvalidParameterException naming the field.
	bad := web("rules")
	bad.NetworkMode = "overlay"
	_, err := c.RegisterTaskDefinition(ctx(t), bad)
	if e := wantErr[*types.InvalidParameterException](t, err); !strings.Contains(e.ErrorMessage(), "networkMode") || !strings.Contains(e.ErrorMessage(), "awsvpc") {
		t.Fatalf("enum violation message: %q", e.ErrorMessage())
	}
	bad = web("rules")
	bad.ContainerDefinitions[0].PortMappings[0].Protocol = "sctp"
	_, err = c.RegisterTaskDefinition(ctx(t), bad)
	if e := wantErr[*types.InvalidParameterException](t, err); !strings.Contains(e.ErrorMessage(), "containerDefinitions[0].portMappings[0].protocol") {
		t.Fatalf("nested enum violation message: %q", e.ErrorMessage())
	}
	// Nothing refused was stored.
	fams := must[*ecs.ListTaskDefinitionFamiliesOutput](t)(c.ListTaskDefinitionFamilies(ctx(t), &ecs.ListTaskDefinitionFamiliesInput{}))
	if len(fams.Families) != 0 {
		t.Fatalf("refused registrations left families: %v", fams.Families)
	}
}

func TestDeregisterAndDeleteTaskDefinitions(t *testing.T) {
	b := startBerth(t)
	c := b.ecsClient()
	for i := 0; i < 3; i++ {
		must[*ecs.RegisterTaskDefinitionOutput](t)(c.RegisterTaskDefinition(ctx(t), web("svc")))
	}
	dereg := must[*ecs.DeregisterTaskDefinitionOutput](t)(c.DeregisterTaskDefinition(ctx(t), &ecs.DeregisterTaskDefinitionInput{TaskDefinition: aws.String("svc:3")}))
	if dereg.TaskDefinition.Status != types.TaskDefinitionStatusInactive || dereg.TaskDefinition.DeregisteredAt == nil {
		t.Fatalf("deregistered: %s at %v", dereg.TaskDefinition.Status, dereg.TaskDefinition.DeregisteredAt)
	}
	// The family now resolves to the newest ACTIVE revision.
	latest := must[*ecs.DescribeTaskDefinitionOutput](t)(c.DescribeTaskDefinition(ctx(t), &ecs.DescribeTaskDefinitionInput{TaskDefinition: aws.String("svc")}))
	if latest.TaskDefinition.Revision != 2 {
		t.Fatalf("latest ACTIVE revision %d, want 2", latest.TaskDefinition.Revision)
	}
	// An INACTIVE revision can still be described by revision.
	inactive := must[*ecs.DescribeTaskDefinitionOutput](t)(c.DescribeTaskDefinition(ctx(t), &ecs.DescribeTaskDefinitionInput{TaskDefinition: aws.String("svc:3")}))
	if inactive.TaskDefinition.Status != types.TaskDefinitionStatusInactive {
		t.Fatalf("svc:3 status %s", inactive.TaskDefinition.Status)
	}
	_, err := c.DeregisterTaskDefinition(ctx(t), &ecs.DeregisterTaskDefinitionInput{TaskDefinition: aws.String("svc")})
	wantErr[*types.ClientException](t, err)
	_, err = c.DeregisterTaskDefinition(ctx(t), &ecs.DeregisterTaskDefinitionInput{TaskDefinition: aws.String("svc:9")})
	wantErr[*types.ClientException](t, err)

	del := must[*ecs.DeleteTaskDefinitionsOutput](t)(c.DeleteTaskDefinitions(ctx(t), &ecs.DeleteTaskDefinitionsInput{
		TaskDefinitions: []string{"svc:3", "arn:aws:ecs:us-east-1:000000000000:task-definition/svc:1", "svc:9", "svc"},
	}))
	if len(del.TaskDefinitions) != 1 || del.TaskDefinitions[0].Status != types.TaskDefinitionStatusDeleteInProgress || del.TaskDefinitions[0].Revision != 3 {
		t.Fatalf("deleted: %+v", del.TaskDefinitions)
	}
	if len(del.Failures) != 3 {
		t.Fatalf("failures: %+v", del.Failures)
	}
	if r := aws.ToString(del.Failures[0].Reason); !strings.Contains(r, "ACTIVE") {
		t.Fatalf("active revision failure reason %q", r)
	}
	_, err = c.DescribeTaskDefinition(ctx(t), &ecs.DescribeTaskDefinitionInput{TaskDefinition: aws.String("svc:3")})
	wantErr[*types.ClientException](t, err)
	// Revisions are never reused.
	next := must[*ecs.RegisterTaskDefinitionOutput](t)(c.RegisterTaskDefinition(ctx(t), web("svc")))
	if next.TaskDefinition.Revision != 4 {
		t.Fatalf("revision after delete %d, want 4", next.TaskDefinition.Revision)
	}
}

func listAll(t *testing.T, c *ecs.Client, in ecs.ListTaskDefinitionsInput) []string {
	t.Helper()
	var out []string
	p := ecs.NewListTaskDefinitionsPaginator(c, &in)
	for p.HasMorePages() {
		page := must[*ecs.ListTaskDefinitionsOutput](t)(p.NextPage(ctx(t)))
		if in.MaxResults != nil && len(page.TaskDefinitionArns) > int(*in.MaxResults) {
			t.Fatalf("page of %d exceeds maxResults", len(page.TaskDefinitionArns))
		}
		for _, a := range page.TaskDefinitionArns {
			out = append(out, strings.TrimPrefix(a, "arn:aws:ecs:us-east-1:000000000000:task-definition/"))
		}
	}
	return out
}

func TestListTaskDefinitionsAndFamilies(t *testing.T) {
	b := startBerth(t)
	c := b.ecsClient()
	for _, f := range []string{"web-api", "web", "db", "web", "web-api", "web"} {
		must[*ecs.RegisterTaskDefinitionOutput](t)(c.RegisterTaskDefinition(ctx(t), web(f)))
	}
	must[*ecs.DeregisterTaskDefinitionOutput](t)(c.DeregisterTaskDefinition(ctx(t), &ecs.DeregisterTaskDefinitionInput{TaskDefinition: aws.String("db:1")}))

	asc := []string{"web:1", "web:2", "web:3", "web-api:1", "web-api:2"}
	if got := listAll(t, c, ecs.ListTaskDefinitionsInput{MaxResults: aws.Int32(2)}); !slices.Equal(got, asc) {
		t.Fatalf("ASC: %v", got)
	}
	desc := slices.Clone(asc)
	slices.Reverse(desc)
	if got := listAll(t, c, ecs.ListTaskDefinitionsInput{MaxResults: aws.Int32(2), Sort: types.SortOrderDesc}); !slices.Equal(got, desc) {
		t.Fatalf("DESC: %v", got)
	}
	if got := listAll(t, c, ecs.ListTaskDefinitionsInput{FamilyPrefix: aws.String("web")}); !slices.Equal(got, []string{"web:1", "web:2", "web:3"}) {
		t.Fatalf("familyPrefix is the full family: %v", got)
	}
	if got := listAll(t, c, ecs.ListTaskDefinitionsInput{Status: types.TaskDefinitionStatusInactive}); !slices.Equal(got, []string{"db:1"}) {
		t.Fatalf("INACTIVE: %v", got)
	}
	fams := func(in ecs.ListTaskDefinitionFamiliesInput) []string {
		var out []string
		p := ecs.NewListTaskDefinitionFamiliesPaginator(c, &in)
		for p.HasMorePages() {
			out = append(out, must[*ecs.ListTaskDefinitionFamiliesOutput](t)(p.NextPage(ctx(t))).Families...)
		}
		return out
	}
	if got := fams(ecs.ListTaskDefinitionFamiliesInput{MaxResults: aws.Int32(1)}); !slices.Equal(got, []string{"db", "web", "web-api"}) {
		t.Fatalf("families: %v", got)
	}
	if got := fams(ecs.ListTaskDefinitionFamiliesInput{Status: types.TaskDefinitionFamilyStatusActive}); !slices.Equal(got, []string{"web", "web-api"}) {
		t.Fatalf("ACTIVE families: %v", got)
	}
	if got := fams(ecs.ListTaskDefinitionFamiliesInput{Status: types.TaskDefinitionFamilyStatusInactive}); !slices.Equal(got, []string{"db"}) {
		t.Fatalf("INACTIVE families: %v", got)
	}
	if got := fams(ecs.ListTaskDefinitionFamiliesInput{FamilyPrefix: aws.String("web-")}); !slices.Equal(got, []string{"web-api"}) {
		t.Fatalf("family prefix: %v", got)
	}
	// Once every revision of a family is deleted, ECS no longer lists it.
	must[*ecs.DeleteTaskDefinitionsOutput](t)(c.DeleteTaskDefinitions(ctx(t), &ecs.DeleteTaskDefinitionsInput{TaskDefinitions: []string{"db:1"}}))
	if got := fams(ecs.ListTaskDefinitionFamiliesInput{}); !slices.Equal(got, []string{"web", "web-api"}) {
		t.Fatalf("families after deleting all of db: %v", got)
	}
}
