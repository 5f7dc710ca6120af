// Package provider is the Terraform glue of the release provider: schemas,
// plans and the conversion between Terraform values and the domain packages.
package provider

import (
	"context"
	"time"

	"github.com/hashicorp/terraform-plugin-framework/action"
	"github.com/hashicorp/terraform-plugin-framework/datasource"
	"github.com/hashicorp/terraform-plugin-framework/function"
	"github.com/hashicorp/terraform-plugin-framework/list"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/provider"
	"github.com/hashicorp/terraform-plugin-framework/provider/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/releasekit/terraform-provider-release/internal/clock"
	"github.com/releasekit/terraform-provider-release/internal/docker"
	"github.com/releasekit/terraform-provider-release/internal/lease"
	"github.com/releasekit/terraform-provider-release/internal/registry"
	"github.com/releasekit/terraform-provider-release/internal/rollout"
	"github.com/releasekit/terraform-provider-release/internal/router"
)

var (
	_ provider.Provider                   = (*releaseProvider)(nil)
	_ provider.ProviderWithValidateConfig = (*releaseProvider)(nil)
	_ provider.ProviderWithListResources  = (*releaseProvider)(nil)
	_ provider.ProviderWithActions        = (*releaseProvider)(nil)
)

// New returns a constructor of the provider for the given version.
func New(version string) func() provider.Provider {
	return func() provider.Provider {
		return &releaseProvider{version: version}
	}
}

type releaseProvider struct {
	version string
}

type providerModel struct {
	DockerHost   types.String        `tfsdk:"docker_host"`
	CertPath     types.String        `tfsdk:"cert_path"`
	CAMaterial   types.String        `tfsdk:"ca_material"`
	CertMaterial types.String        `tfsdk:"cert_material"`
	KeyMaterial  types.String        `tfsdk:"key_material"`
	RegistryAuth []registryAuthModel `tfsdk:"registry_auth"`
}

type registryAuthModel struct {
	Address    types.String `tfsdk:"address"`
	Username   types.String `tfsdk:"username"`
	Password   types.String `tfsdk:"password"`
	ConfigFile types.String `tfsdk:"config_file"`
}

// providerData is what resources and data sources receive from Configure.
type providerData struct {
	docker   *docker.Connector
	engine   *docker.Engine
	registry *registry.Client
	routes   *router.Controller
	deployer *rollout.Deployer
	snapshot *hostSnapshot
	claims   *listenerClaims
	leases   *lease.Shared
}

func (p *releaseProvider) Metadata(_ context.Context, _ provider.MetadataRequest, resp *provider.MetadataResponse) {
	resp.TypeName = "release"
	resp.Version = p.version
}

func (p *releaseProvider) Schema(_ context.Context, _ provider.SchemaRequest, resp *provider.SchemaResponse) {
	resp.Schema = schema.Schema{
		Description: "Releases container images onto Docker hosts: a pinned digest promoted between environments, " +
			"zero-downtime switches, canaries judged on live metrics, and migrations that move with the code. " +
			"Provider configuration is never written to state.",
		Attributes: map[string]schema.Attribute{
			"docker_host": schema.StringAttribute{
				Description: "Address of the Docker Engine: `unix:///path/to/docker.sock`, `tcp://host:2376` (with TLS material or `cert_path`) " +
					"or `ssh://user@host` (runs `docker system dial-stdio` on the host, like the Docker CLI). " +
					"Defaults to the `DOCKER_HOST` environment variable, then `" + docker.DefaultHost + "`. " +
					"The daemon is contacted only by operations that need it, so a plan that needs none works without it.",
				Optional:   true,
				Validators: []validator.String{dockerHostValidator()},
			},
			"cert_path": schema.StringAttribute{
				Description: "Directory holding `ca.pem`, `cert.pem` and `key.pem` for a `tcp://` host with TLS. Defaults to the `DOCKER_CERT_PATH` environment variable. " +
					"The daemon's certificate is always verified: against `ca.pem` when there is one, else against the system's roots.",
				Optional: true,
			},
			"ca_material": schema.StringAttribute{
				Description: "PEM of the CA that signed the daemon's certificate; takes precedence over `cert_path`/ca.pem.",
				Optional:    true,
			},
			"cert_material": schema.StringAttribute{
				Description: "PEM client certificate for a `tcp://` host with TLS; set together with `key_material`.",
				Optional:    true,
			},
			"key_material": schema.StringAttribute{
				Description: "PEM private key of the client certificate.",
				Optional:    true,
				Sensitive:   true,
			},
			"registry_auth": schema.ListNestedAttribute{
				Description: "Credentials for registries, used to resolve tags to digests. A registry not listed here takes its " +
					"credentials from the Docker CLI's `config.json` (`$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`), " +
					"including its credential helpers.",
				Optional: true,
				NestedObject: schema.NestedAttributeObject{
					Attributes: map[string]schema.Attribute{
						"address": schema.StringAttribute{
							Description: "Registry host and optional port, such as `registry.example.com` or `127.0.0.1:5000`; for Docker Hub, `docker.io` (its other names, such as `https://index.docker.io/v1/`, are the same registry).",
							Required:    true,
						},
						"username": schema.StringAttribute{
							Description: "User name for the registry. Set with `password`, or use `config_file` instead.",
							Optional:    true,
						},
						"password": schema.StringAttribute{
							Description: "Password or access token for the registry. Sensitive; provider configuration is never stored in state.",
							Optional:    true,
							Sensitive:   true,
						},
						"config_file": schema.StringAttribute{
							Description: "Path of a Docker `config.json` to take this registry's credentials from, instead of `username` and `password`.",
							Optional:    true,
						},
					},
				},
			},
		},
	}
}

func (p *releaseProvider) ValidateConfig(ctx context.Context, req provider.ValidateConfigRequest, resp *provider.ValidateConfigResponse) {
	var cfg providerModel
	resp.Diagnostics.Append(req.Config.Get(ctx, &cfg)...)
	if resp.Diagnostics.HasError() {
		return
	}
	if !cfg.CertMaterial.IsUnknown() && !cfg.KeyMaterial.IsUnknown() && cfg.CertMaterial.IsNull() != cfg.KeyMaterial.IsNull() {
		resp.Diagnostics.AddAttributeError(path.Root("key_material"), "Incomplete Client Certificate",
			"cert_material and key_material go together: set both, or neither.")
	}
	for i, a := range cfg.RegistryAuth {
		p := path.Root("registry_auth").AtListIndex(i)
		hasUser := !a.Username.IsNull() || !a.Password.IsNull()
		hasFile := !a.ConfigFile.IsNull()
		switch {
		case hasUser && hasFile:
			resp.Diagnostics.AddAttributeError(p.AtName("config_file"), "Conflicting Registry Credentials",
				"Set either username and password, or config_file, for one registry_auth entry; not both.")
		case !hasUser && !hasFile:
			resp.Diagnostics.AddAttributeError(p, "Missing Registry Credentials",
				"A registry_auth entry needs username and password, or config_file.")
		case hasUser && (a.Username.IsNull() || a.Password.IsNull()) && !a.Username.IsUnknown() && !a.Password.IsUnknown():
			resp.Diagnostics.AddAttributeError(p, "Incomplete Registry Credentials",
				"A registry_auth entry with username also needs password, and the other way round.")
		}
	}
}

func (p *releaseProvider) Configure(ctx context.Context, req provider.ConfigureRequest, resp *provider.ConfigureResponse) {
	var cfg providerModel
	resp.Diagnostics.Append(req.Config.Get(ctx, &cfg)...)
	if resp.Diagnostics.HasError() {
		return
	}

	dockerCfg := docker.ConfigFromEnv()
	setIfKnown(&dockerCfg.Host, cfg.DockerHost)
	setIfKnown(&dockerCfg.CertPath, cfg.CertPath)
	setIfKnown(&dockerCfg.CAPEM, cfg.CAMaterial)
	setIfKnown(&dockerCfg.CertPEM, cfg.CertMaterial)
	setIfKnown(&dockerCfg.KeyPEM, cfg.KeyMaterial)

	static := registry.StaticCredentials{}
	var chain registry.Chain
	for i, a := range cfg.RegistryAuth {
		host := registry.NormalizeHost(a.Address.ValueString())
		if !a.ConfigFile.IsNull() && !a.ConfigFile.IsUnknown() {
			dc, err := registry.LoadDockerConfig(a.ConfigFile.ValueString(), false)
			if err != nil {
				resp.Diagnostics.AddAttributeError(path.Root("registry_auth").AtListIndex(i).AtName("config_file"),
					"Unreadable Docker Config", "The Docker config file for "+host+" could not be read. Check the path and that the file is JSON.\n\n"+err.Error())
				return
			}
			chain = append(chain, hostOnly{host: host, creds: dc})
			continue
		}
		static[host] = registry.Credential{Username: a.Username.ValueString(), Password: a.Password.ValueString()}
	}
	chain = append(registry.Chain{static}, chain...)
	if path := registry.DefaultDockerConfigPath(); path != "" {
		dc, err := registry.LoadDockerConfig(path, true)
		if err != nil {
			resp.Diagnostics.AddWarning("Unreadable Docker Config",
				"The Docker CLI's config file could not be read, so registries without a registry_auth entry are accessed anonymously.\n\n"+err.Error())
		} else {
			chain = append(chain, dc)
		}
	}

	conn := docker.NewConnector(dockerCfg)
	engine := docker.NewEngine(conn)
	// The router checks a just-added server within its downinter (50ms);
	// its state is read through a probe session that answers in a
	// millisecond or two, so reading it every 10ms keeps the switch close
	// behind that check.
	routes := &router.Controller{Docker: engine, ReadyPoll: 10 * time.Millisecond}
	data := &providerData{
		docker:   conn,
		engine:   engine,
		registry: registry.NewClient(chain),
		routes:   routes,
		snapshot: &hostSnapshot{},
		claims:   &listenerClaims{},
		// One apply at a time per router: renewed every 10s while held, so
		// a killed apply's lease runs out within 30s (at once when its process is gone).
		leases: &lease.Shared{Host: engine, Clock: clock.Real{}, TTL: 30 * time.Second, Wait: 10 * time.Minute},
	}
	data.deployer = &rollout.Deployer{Host: engine, Routes: routes, Clock: clock.Real{}, RegistryAuth: data.pullAuth, Metrics: canaryMetricsSource{data}}
	data.registry.UserAgent = "terraform-provider-release/" + p.version
	resp.ResourceData = data
	resp.DataSourceData = data
	resp.ListResourceData = data
	resp.ActionData = data
}

func (p *releaseProvider) Resources(context.Context) []func() resource.Resource {
	return []func() resource.Resource{
		NewImageResource,
		NewRouterResource,
		NewEnvironmentResource,
		NewMigrationResource,
		NewCanaryResource,
	}
}

// Actions act on canaries that other applies run (Terraform 1.14 and later).
func (p *releaseProvider) Actions(context.Context) []func() action.Action {
	return []func() action.Action{
		NewCanaryAbortAction,
		NewCanaryPromoteAction,
		NewCanaryHoldAction,
	}
}

// ListResources are what terraform query lists (Terraform 1.14 and later).
func (p *releaseProvider) ListResources(context.Context) []func() list.ListResource {
	return []func() list.ListResource{
		NewEnvironmentListResource,
		NewRouterListResource,
	}
}

func (p *releaseProvider) DataSources(context.Context) []func() datasource.DataSource {
	return []func() datasource.DataSource{
		NewImageDataSource,
		NewEnvironmentDataSource,
	}
}

func (p *releaseProvider) Functions(context.Context) []func() function.Function {
	return []func() function.Function{
		NewParseRefFunction,
		NewVerifiesFunction,
	}
}

// hostOnly limits a credential source to one registry host.
type hostOnly struct {
	host  string
	creds registry.Credentials
}

func (h hostOnly) Lookup(host string) (registry.Credential, bool, error) {
	if registry.NormalizeHost(host) != h.host {
		return registry.Credential{}, false, nil
	}
	return h.creds.Lookup(host)
}

func setIfKnown(dst *string, v types.String) {
	if !v.IsNull() && !v.IsUnknown() {
		*dst = v.ValueString()
	}
}

// providerDataFrom unpacks ProviderData in a resource's or data source's Configure.
func providerDataFrom(raw any, diags interface {
	AddError(string, string)
}) *providerData {
	if raw == nil {
		return nil // not configured yet, e.g. during validation
	}
	data, ok := raw.(*providerData)
	if !ok {
		diags.AddError("Unexpected Provider Data", "The provider handed an unexpected value to a resource. This is a bug in the provider; please report it.")
		return nil
	}
	return data
}
