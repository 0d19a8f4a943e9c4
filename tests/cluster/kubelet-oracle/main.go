// kubelet-oracle answers credential questions with the kubelet's own code (the k8s.io/kubernetes release pinned in
// ../go.mod), so that tests/kubelet_oracle.rs can compare pullsecret-injector's Rust core against it.
//
// It reads JSON lines on stdin, one case per line, and writes one JSON line per case on stdout (flushed per line,
// so one long-lived process can be driven case by case). Two kinds of case:
//
//	{"secrets": [{"name": "a", "type": "kubernetes.io/dockerconfigjson", "data": {".dockerconfigjson": "<base64>"}}],
//	 "images": ["nginx", ...], "raw": false}
//	-> {"keyring_error": "..."?, "images": [{"lookup": "docker.io/library/nginx" | "parse_error": "...",
//	    "credentials": [{"secret": 0, "name": "a", "username": "...", "password": "...", "email": "..."}]}]}
//
// The kubelet's image manager: applyDefaultImageTag, then parsers.ParseImageName gives the lookup string
// (repoToPull); secrets.MakeDockerKeyring(secrets in Pod order, empty default keyring); Lookup(repoToPull).
// With "raw": true, each image is taken as the lookup string itself (to reach keyring corners no image reaches).
// "credentials" is null when MakeDockerKeyring fails (then "keyring_error" says why) or the image does not parse.
// "secret" is the position of the source Secret in the case's list (a name may be listed twice).
//
//	{"patterns": ["*.example.com", ...], "target": "reg.example.com/app"}  ->  {"matched": true}
//
// An exec credential provider's matchImages (pkg/credentialprovider/plugin isImageAllowed): true when any pattern
// matches the lookup string "target" by credentialprovider.URLsMatchStr.
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/go-logr/logr"
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	utilfeature "k8s.io/apiserver/pkg/util/feature"
	"k8s.io/klog/v2"
	"k8s.io/kubernetes/pkg/credentialprovider"
	"k8s.io/kubernetes/pkg/credentialprovider/secrets"
	"k8s.io/kubernetes/pkg/features"
	"k8s.io/kubernetes/pkg/util/parsers"
)

type secret struct {
	Name string            `json:"name"`
	Type string            `json:"type"`
	Data map[string][]byte `json:"data"` // base64 in JSON, as in the Secret API
}

type request struct {
	Secrets  []secret `json:"secrets"`
	Images   []string `json:"images"`
	Raw      bool     `json:"raw"` // images are lookup strings: Lookup them as they are
	Patterns []string `json:"patterns"`
	Target   string   `json:"target"`
}

type credential struct {
	Secret   int    `json:"secret"`
	Name     string `json:"name"`
	Username string `json:"username"`
	Password string `json:"password"`
	Email    string `json:"email"`
}

type image struct {
	Lookup      *string      `json:"lookup,omitempty"`
	ParseError  *string      `json:"parse_error,omitempty"`
	Credentials []credential `json:"credentials"` // null: not looked up
}

type answer struct {
	KeyringError *string `json:"keyring_error,omitempty"`
	Images       []image `json:"images,omitempty"`
	Matched      *bool   `json:"matched,omitempty"`
	// A line the oracle could not read as a case.
	BadRequest *string `json:"bad_request,omitempty"`
}

func main() {
	// BasicDockerKeyring.Add logs every key it drops; the answers say what matters.
	klog.SetLogger(logr.Discard())
	// TrackedAuthConfig.Source (which Secret a credential came from) is filled only under this gate (beta, on by
	// default since 1.35); set it explicitly so the answers never depend on the emulated version.
	if err := utilfeature.DefaultMutableFeatureGate.Set(string(features.KubeletEnsureSecretPulledImages) + "=true"); err != nil {
		fmt.Fprintln(os.Stderr, "kubelet-oracle:", err)
		os.Exit(2)
	}

	in := bufio.NewReader(os.Stdin)
	out := bufio.NewWriter(os.Stdout)
	enc := json.NewEncoder(out)
	enc.SetEscapeHTML(false)
	for {
		line, err := in.ReadBytes('\n')
		if len(strings.TrimSpace(string(line))) > 0 {
			if err := enc.Encode(answerLine(line)); err != nil { // Encode ends the line with '\n'
				fmt.Fprintln(os.Stderr, "kubelet-oracle:", err)
				os.Exit(2)
			}
			if err := out.Flush(); err != nil {
				os.Exit(0) // the reader went away
			}
		}
		if err != nil { // io.EOF: done
			return
		}
	}
}

func answerLine(line []byte) answer {
	var req request
	if err := json.Unmarshal(line, &req); err != nil {
		msg := err.Error()
		return answer{BadRequest: &msg}
	}
	if req.Patterns != nil {
		matched := false
		for _, pattern := range req.Patterns { // pluginProvider.isImageAllowed
			if ok, _ := credentialprovider.URLsMatchStr(pattern, req.Target); ok {
				matched = true
				break
			}
		}
		return answer{Matched: &matched}
	}
	return lookup(req)
}

func lookup(req request) answer {
	pullSecrets := make([]v1.Secret, len(req.Secrets))
	for i, s := range req.Secrets {
		pullSecrets[i].Name = s.Name
		pullSecrets[i].UID = types.UID(strconv.Itoa(i)) // attributes each credential to its position
		pullSecrets[i].Type = v1.SecretType(s.Type)
		pullSecrets[i].Data = s.Data
	}
	keyring, keyringErr := secrets.MakeDockerKeyring(pullSecrets, credentialprovider.UnionDockerKeyring{})

	var ans answer
	if keyringErr != nil {
		msg := keyringErr.Error()
		ans.KeyringError = &msg
	}
	ans.Images = make([]image, 0, len(req.Images))
	for _, requested := range req.Images {
		var img image
		repoToPull, err := requested, error(nil)
		if !req.Raw {
			repoToPull, err = lookupString(requested)
		}
		if err != nil {
			msg := err.Error()
			img.ParseError = &msg
		} else {
			img.Lookup = &repoToPull
		}
		if err == nil && keyringErr == nil {
			found, _ := keyring.Lookup(repoToPull)
			img.Credentials = make([]credential, 0, len(found))
			for _, c := range found {
				if c.Source == nil || c.Source.Secret == nil {
					panic("a credential without its source Secret")
				}
				i, _ := strconv.Atoi(c.Source.Secret.UID)
				img.Credentials = append(img.Credentials, credential{
					Secret: i, Name: c.Source.Secret.Name, Username: c.Username, Password: c.Password, Email: c.Email,
				})
			}
		}
		ans.Images = append(ans.Images, img)
	}
	return ans
}

// lookupString is what imageManager.EnsureImageExists hands to the keyring: applyDefaultImageTag (unexported in
// pkg/kubelet/images; copied below), then ParseImageName of the tagged image in makeLookupPullCredentialsFunc.
func lookupString(requested string) (string, error) {
	image, err := applyDefaultImageTag(requested)
	if err != nil {
		return "", err
	}
	repoToPull, _, _, err := parsers.ParseImageName(image)
	return repoToPull, err
}

// applyDefaultImageTag is pkg/kubelet/images/image_manager.go's, verbatim.
func applyDefaultImageTag(image string) (string, error) {
	_, tag, digest, err := parsers.ParseImageName(image)
	if err != nil {
		return "", err
	}
	if len(digest) == 0 && len(tag) > 0 && !strings.HasSuffix(image, ":"+tag) {
		image = image + ":" + tag
	}
	return image, nil
}
