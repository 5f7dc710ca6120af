package provider

import (
	"encoding/json"
	"fmt"
	"net"
	"os/exec"
	"regexp"
	"strings"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/helper/acctest"
	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"
)

func testImageConfig(repository, attrs string) string {
	return fmt.Sprintf(`
resource "release_image" "test" {
  repository = %q
  %s
}
`, repository, attrs)
}

// A tag resolves to the digest the registry holds, already in the plan, and
// import by repository@digest (with or without the tag) reads it back.
func TestAccImage_resolvesTagAndImports(t *testing.T) {
	repo := testStackEnv(t, "RELEASE_TEST_IMAGE_REPOSITORY")
	v1 := testStackEnv(t, "RELEASE_TEST_IMAGE_V1_DIGEST")
	resource.Test(t, resource.TestCase{
		PreCheck:                 func() { testAccPreCheck(t) },
		ProtoV6ProviderFactories: testAccProviders,
		Steps: []resource.TestStep{
			{
				Config: testImageConfig(repo, `tag = "1.0.0"`),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					// The reviewer of a plan sees the digest that will be pinned.
					plancheck.ExpectKnownValue("release_image.test", tfjsonpath.New("digest"), knownvalue.StringExact(v1)),
					plancheck.ExpectKnownValue("release_image.test", tfjsonpath.New("ref"), knownvalue.StringExact(repo+"@"+v1)),
				}},
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue("release_image.test", tfjsonpath.New("digest"), knownvalue.StringExact(v1)),
					statecheck.ExpectKnownValue("release_image.test", tfjsonpath.New("ref"), knownvalue.StringExact(repo+"@"+v1)),
					statecheck.ExpectKnownValue("release_image.test", tfjsonpath.New("id"), knownvalue.StringExact(repo+"@"+v1)),
				},
			},
			{
				ResourceName:      "release_image.test",
				ImportState:       true,
				ImportStateId:     repo + ":1.0.0@" + v1,
				ImportStateVerify: true,
			},
			{
				ResourceName:            "release_image.test",
				ImportState:             true,
				ImportStateId:           repo + "@" + v1,
				ImportStateVerify:       true,
				ImportStateVerifyIgnore: []string{"tag"},
			},
			{
				// Pinning the digest directly, checked against the registry.
				Config: testImageConfig(repo, fmt.Sprintf(`digest = %q`, v1)),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction("release_image.test", plancheck.ResourceActionUpdate),
				}},
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue("release_image.test", tfjsonpath.New("digest"), knownvalue.StringExact(v1)),
					statecheck.ExpectKnownValue("release_image.test", tfjsonpath.New("tag"), knownvalue.Null()),
					statecheck.ExpectIdentity("release_image.test", map[string]knownvalue.Check{
						"repository": knownvalue.StringExact(repo),
						"digest":     knownvalue.StringExact(v1),
					}),
				},
			},
			{
				// An import block with identity = { repository, digest }
				// (Terraform 1.12 and later) plans a no-op import.
				ResourceName:    "release_image.test",
				ImportState:     true,
				ImportStateKind: resource.ImportBlockWithResourceIdentity,
			},
		},
	})
}

// Importing by digest and then adding a tag that names another image replaces
// the pin rather than silently recording a tag the digest never had.
func TestAccImage_importThenDifferentTagReplaces(t *testing.T) {
	repo := testStackEnv(t, "RELEASE_TEST_IMAGE_REPOSITORY")
	v1 := testStackEnv(t, "RELEASE_TEST_IMAGE_V1_DIGEST")
	v2 := testStackEnv(t, "RELEASE_TEST_IMAGE_V2_DIGEST")
	resource.Test(t, resource.TestCase{
		PreCheck:                 func() { testAccPreCheck(t) },
		ProtoV6ProviderFactories: testAccProviders,
		Steps: []resource.TestStep{
			{Config: testImageConfig(repo, fmt.Sprintf(`digest = %q`, v1))},
			{
				Config: testImageConfig(repo, `tag = "2.0.0"`),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction("release_image.test", plancheck.ResourceActionDestroyBeforeCreate),
					plancheck.ExpectKnownValue("release_image.test", tfjsonpath.New("digest"), knownvalue.StringExact(v2)),
				}},
			},
			{
				// The same tag naming the same digest is only recorded.
				Config: testImageConfig(repo, fmt.Sprintf(`digest = %q`, v2)),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction("release_image.test", plancheck.ResourceActionUpdate),
				}},
			},
		},
	})
}

// A tag that moves after create leaves the pinned digest alone; the plan
// warns with both digests, and replacing the resource takes the new one.
// Run through the terraform CLI, since the warning is what the user reads.
func TestAccImage_movedTagKeepsPinnedDigest(t *testing.T) {
	testAccPreCheck(t)
	repo := testStackEnv(t, "RELEASE_TEST_IMAGE_REPOSITORY")
	v1 := testStackEnv(t, "RELEASE_TEST_IMAGE_V1_DIGEST")
	v2 := testStackEnv(t, "RELEASE_TEST_IMAGE_V2_DIGEST")
	tag := "moving-" + acctest.RandString(8)
	testRegistryTag(t, repo, "1.0.0", tag)

	w := newTFWorkspace(t, testImageConfig(repo, fmt.Sprintf("tag = %q", tag))+`
output "digest" { value = release_image.test.digest }
`)
	w.destroyOnCleanup()
	w.mustRun("apply", "-auto-approve")
	if got := w.output("digest"); got != v1 {
		t.Fatalf("pinned %s, want v1 %s", got, v1)
	}

	testRegistryTag(t, repo, "2.0.0", tag)

	out, code := w.run("plan", "-detailed-exitcode")
	if code != 0 {
		t.Fatalf("plan after the tag moved: exit %d, want 0 (no changes):\n%s", code, out)
	}
	for _, want := range []string{"Warning: Image Tag Moved", v1, v2, "-replace="} {
		if !strings.Contains(out, want) {
			t.Errorf("the plan output does not contain %q:\n%s", want, out)
		}
	}
	if got := w.output("digest"); got != v1 {
		t.Fatalf("after the move the state holds %s, want the pinned %s", got, v1)
	}

	w.mustRun("apply", "-auto-approve", "-replace=release_image.test")
	if got := w.output("digest"); got != v2 {
		t.Fatalf("after replace the pin is %s, want the moved tag's %s", got, v2)
	}
	out = w.mustRun("plan", "-detailed-exitcode")
	if strings.Contains(out, "Image Tag Moved") {
		t.Errorf("after the replace the plan still warns:\n%s", out)
	}
}

// A multi-platform index keeps its own digest unless platform picks one.
func TestAccImage_multiPlatformIndex(t *testing.T) {
	repo := testStackEnv(t, "RELEASE_TEST_IMAGE_REPOSITORY")
	v1 := testStackEnv(t, "RELEASE_TEST_IMAGE_V1_DIGEST")
	v2 := testStackEnv(t, "RELEASE_TEST_IMAGE_V2_DIGEST")
	mt1, b1 := testRegistryManifest(t, repo, v1)
	mt2, b2 := testRegistryManifest(t, repo, v2)
	index, _ := json.Marshal(map[string]any{
		"schemaVersion": 2,
		"mediaType":     "application/vnd.oci.image.index.v1+json",
		"manifests": []map[string]any{
			{"mediaType": mt1, "digest": v1, "size": len(b1), "platform": map[string]string{"os": "linux", "architecture": "amd64"}},
			{"mediaType": mt2, "digest": v2, "size": len(b2), "platform": map[string]string{"os": "linux", "architecture": "arm64", "variant": "v8"}},
		},
	})
	tag := "multi-" + acctest.RandString(8)
	indexDigest := testRegistryPutManifest(t, repo, tag, "application/vnd.oci.image.index.v1+json", index)

	resource.Test(t, resource.TestCase{
		PreCheck:                 func() { testAccPreCheck(t) },
		ProtoV6ProviderFactories: testAccProviders,
		Steps: []resource.TestStep{
			{
				Config: testImageConfig(repo, fmt.Sprintf("tag = %q", tag)),
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue("release_image.test", tfjsonpath.New("digest"), knownvalue.StringExact(indexDigest)),
				},
			},
			{
				Config: testImageConfig(repo, fmt.Sprintf("tag = %q\n  platform = \"linux/arm64\"", tag)),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction("release_image.test", plancheck.ResourceActionDestroyBeforeCreate),
				}},
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue("release_image.test", tfjsonpath.New("digest"), knownvalue.StringExact(v2)),
				},
			},
			{
				Config:      testImageConfig(repo, fmt.Sprintf("tag = %q\n  platform = \"linux/s390x\"", tag)),
				ExpectError: expectDiag(`(?s)Image Platform Not Found.*linux/amd64, linux/arm64/v8`),
			},
			{
				// A single-platform image is checked against its config.
				Config:      testImageConfig(repo, "tag = \"1.0.0\"\n  platform = \"windows/amd64\""),
				ExpectError: expectDiag(`(?s)Image Platform Not Found.*single-platform image for linux/amd64`),
			},
		},
	})
}

// Each error a user meets is a plan-time diagnostic naming what to fix.
func TestAccImage_errors(t *testing.T) {
	repo := testStackEnv(t, "RELEASE_TEST_IMAGE_REPOSITORY")
	registryHost := testStackEnv(t, "RELEASE_TEST_REGISTRY")
	missingDigest := "sha256:" + strings.Repeat("0", 64)

	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedAddr := closed.Addr().String()
	closed.Close()

	planError := func(config, pattern string) resource.TestStep {
		return resource.TestStep{Config: config, PlanOnly: true, ExpectError: expectDiag(pattern)}
	}
	resource.Test(t, resource.TestCase{
		PreCheck:                 func() { testAccPreCheck(t) },
		ProtoV6ProviderFactories: testAccProviders,
		Steps: []resource.TestStep{
			planError(testImageConfig(repo, `tag = "9.9.9-missing"`), `(?s)Image Tag Not Found.*has no tag "9.9.9-missing".*docker push`),
			planError(testImageConfig(registryHost+"/releasekit/no-such-repo", `tag = "1.0.0"`), `(?s)Image Repository Not Found.*no repository "releasekit/no-such-repo"`),
			planError(testImageConfig(repo, fmt.Sprintf("digest = %q", missingDigest)), `(?s)Image Digest Not Found.*`+missingDigest),
			planError(testImageConfig(closedAddr+"/releasekit/testapp", `tag = "1.0.0"`), `(?s)Registry Unreachable.*`+regexp.QuoteMeta(closedAddr)+`.*did not answer`),
			planError(testImageConfig("releasekit/testapp", `tag = "1.0.0"`), `(?s)Invalid image repository.*does not start with a registry host`),
			planError(testImageConfig(registryHost+"/Release/App", `tag = "1.0.0"`), `(?s)Invalid image repository`),
			planError(testImageConfig(repo, `tag = "-bad tag"`), `(?s)Invalid image tag.*1 to 128 characters`),
			planError(testImageConfig(repo, `digest = "sha256:abc"`), `(?s)Invalid image digest.*64 lowercase hexadecimal`),
			planError(testImageConfig(repo, `platform = "linux"`+"\n  tag = \"1.0.0\""), `(?s)Invalid platform.*os/architecture`),
			planError(testImageConfig(repo, ""), `Missing Image Tag or Digest`),
			planError(testImageConfig(repo, fmt.Sprintf("tag = \"1.0.0\"\n  digest = %q", missingDigest)), `Conflicting Image Tag and Digest`),
		},
	})
}

// Registries that need a login: refused without or with wrong credentials,
// resolved with registry_auth or with a Docker config.json.
func TestAccImage_registryAuth(t *testing.T) {
	authHost := testStackEnv(t, "RELEASE_TEST_AUTH_REGISTRY")
	user := testStackEnv(t, "RELEASE_TEST_AUTH_USERNAME")
	pass := testStackEnv(t, "RELEASE_TEST_AUTH_PASSWORD")
	repo := authHost + "/releasekit/testapp"
	withAuth := func(password string) string {
		return fmt.Sprintf(`
provider "release" {
  registry_auth = [{
    address  = %q
    username = %q
    password = %q
  }]
}
`, authHost, user, password) + testImageConfig(repo, `tag = "1.0.0"`)
	}
	dockerConfigDir := t.TempDir()
	t.Setenv("DOCKER_CONFIG", dockerConfigDir)
	writeDockerConfig(t, dockerConfigDir, authHost, user, pass)

	resource.Test(t, resource.TestCase{
		PreCheck:                 func() { testAccPreCheck(t) },
		ProtoV6ProviderFactories: testAccProviders,
		Steps: []resource.TestStep{
			{
				Config:      withAuth("wrong-password"),
				PlanOnly:    true,
				ExpectError: expectDiag(`(?s)Registry Access Refused.*` + regexp.QuoteMeta(authHost) + `.*registry_auth`),
			},
			{
				Config: withAuth(pass),
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue("release_image.test", tfjsonpath.New("digest"), knownvalue.StringRegexp(regexp.MustCompile(`^sha256:[a-f0-9]{64}$`))),
				},
			},
			{
				// No registry_auth: the credentials come from $DOCKER_CONFIG/config.json.
				Config:   testImageConfig(repo, `tag = "1.0.0"`),
				PlanOnly: true,
			},
		},
	})

	// Without any credentials the registry refuses, and the error says how to log in.
	t.Setenv("DOCKER_CONFIG", t.TempDir())
	resource.Test(t, resource.TestCase{
		PreCheck:                 func() { testAccPreCheck(t) },
		ProtoV6ProviderFactories: testAccProviders,
		Steps: []resource.TestStep{{
			Config:      testImageConfig(repo, `tag = "1.0.0"`),
			PlanOnly:    true,
			ExpectError: expectDiag(`(?s)Registry Access Refused.*docker login.*no credentials are configured`),
		}},
	})
}

// The provider needs no Docker daemon for a plan that does not use one.
func TestAccProvider_noDaemonNeededForImages(t *testing.T) {
	repo := testStackEnv(t, "RELEASE_TEST_IMAGE_REPOSITORY")
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := closed.Addr().String()
	closed.Close()
	resource.Test(t, resource.TestCase{
		PreCheck:                 func() { testAccPreCheck(t) },
		ProtoV6ProviderFactories: testAccProviders,
		Steps: []resource.TestStep{
			{
				// The first operation that needs the daemon names the host that did not answer.
				Config: fmt.Sprintf("provider \"release\" {\n  docker_host = \"tcp://%s\"\n}\n", addr) + `
resource "release_router" "edge" {
  name  = "unreachable"
  image = "haproxy:3.0"
  ports = [{ internal = 80, external = 18999 }]
}`,
				ExpectError: expectDiag(`(?s)Docker Daemon Unreachable.*tcp://` + regexp.QuoteMeta(addr) + `.*did not answer.*docker_host`),
			},
			{
				Config:      "provider \"release\" {\n  docker_host = \"http://localhost:2375\"\n}\n" + testImageConfig(repo, `tag = "1.0.0"`),
				PlanOnly:    true,
				ExpectError: expectDiag(`(?s)Invalid Docker Host.*use unix://, tcp:// or ssh://`),
			},
			{
				Config: fmt.Sprintf("provider \"release\" {\n  docker_host = \"tcp://%s\"\n}\n", addr) + testImageConfig(repo, `tag = "1.0.0"`),
			},
		},
	})
}

// A registry with token auth (the bearer flow of GHCR, Docker Hub and
// GitLab; the stack's docker-registry with auth: token and its token
// service): the tag resolves with registry_auth, and the environment's
// containers are pulled from it by the Docker Engine with the same login.
func TestAccEnvironment_tokenAuthRegistry(t *testing.T) {
	f := newEnvFixture(t)
	tokenHost := testStackEnv(t, "RELEASE_TEST_TOKEN_REGISTRY")
	repo := testStackEnv(t, "RELEASE_TEST_TOKEN_IMAGE_REPOSITORY")
	user := testStackEnv(t, "RELEASE_TEST_AUTH_USERNAME")
	pass := testStackEnv(t, "RELEASE_TEST_AUTH_PASSWORD")
	t.Setenv("DOCKER_CONFIG", t.TempDir()) // no login but registry_auth
	// The image must not be on the Docker host under this name (the stack's
	// push left it), so that the apply pulls it from the token registry: the
	// names go, the image stays under the plain registry's.
	for _, name := range []string{repo + ":1.0.0", repo + "@" + f.v1} {
		if out, err := exec.Command("docker", "rmi", name).CombinedOutput(); err != nil && !strings.Contains(string(out), "No such image") {
			t.Logf("docker rmi %s: %v: %s", name, err, out)
		}
	}
	config := func(password string) string {
		return fmt.Sprintf(`
provider "release" {
  registry_auth = [{ address = %[1]q, username = %[2]q, password = %[3]q }]
}
`, tokenHost, user, password) + testImageConfig(repo, `tag = "1.0.0"`) +
			strings.Replace(strings.Replace(f.config(f.v1, ""), fmt.Sprintf("image    = \"%s@%s\"", f.repo, f.v1), "image    = release_image.test.ref", 1), "replicas = 2", "replicas = 1", 1)
	}
	resource.Test(t, resource.TestCase{
		PreCheck:                 func() { testAccPreCheck(t) },
		ProtoV6ProviderFactories: testAccProviders,
		CheckDestroy:             f.checkDestroyed,
		Steps: []resource.TestStep{
			{
				Config:      config("wrong-password"),
				PlanOnly:    true,
				ExpectError: expectDiag(`(?s)Registry Access Refused.*` + regexp.QuoteMeta(tokenHost)),
			},
			{
				Config: config(pass),
				Check:  resource.ComposeTestCheckFunc(f.checkServes("1.0.0"), resource.TestCheckResourceAttr("release_image.test", "digest", f.v1)),
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue("release_environment.web", tfjsonpath.New("image"), knownvalue.StringExact(repo+"@"+f.v1)),
				},
			},
			{
				// The next plan checks the tag (a HEAD with a token) and finds it where it was.
				Config:   config(pass),
				PlanOnly: true,
			},
		},
	})
}
