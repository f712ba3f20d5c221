package ecs

import (
	"context"
	"regexp"
	"slices"
	"strings"

	"github.com/berthdev/berth/internal/api/paging"
	"github.com/berthdev/berth/internal/awsmodel/ecstypes"
	"github.com/berthdev/berth/internal/state"
	"github.com/berthdev/berth/internal/store"
)

// settingRule is what one account setting accepts and its AWS default.
type settingRule struct {
	values []string
	def    string
}

var (
	onOff          = []string{"enabled", "disabled"}
	accountSetting = map[ecstypes.SettingName]settingRule{
		ecstypes.SettingNameServiceLongArnFormat:            {onOff, "enabled"},
		ecstypes.SettingNameTaskLongArnFormat:               {onOff, "enabled"},
		ecstypes.SettingNameContainerInstanceLongArnFormat:  {onOff, "enabled"},
		ecstypes.SettingNameAwsvpcTrunking:                  {onOff, "disabled"},
		ecstypes.SettingNameContainerInsights:               {[]string{"enabled", "disabled", "enhanced"}, "disabled"},
		ecstypes.SettingNameFargateFIPSMode:                 {onOff, "disabled"},
		ecstypes.SettingNameTagResourceAuthorization:        {[]string{"on", "off"}, "on"},
		ecstypes.SettingNameFargateTaskRetirementWaitPeriod: {[]string{"0", "7", "14"}, "7"},
		ecstypes.SettingNameGuardDutyActivate:               {[]string{"on", "off"}, "off"},
		ecstypes.SettingNameDefaultLogDriverMode:            {[]string{"blocking", "non-blocking"}, "non-blocking"},
		ecstypes.SettingNameFargateEventWindows:             {onOff, "disabled"},
	}
	longARNSettings = []ecstypes.SettingName{
		ecstypes.SettingNameServiceLongArnFormat, ecstypes.SettingNameTaskLongArnFormat, ecstypes.SettingNameContainerInstanceLongArnFormat,
	}
	principalRE = regexp.MustCompile(`^arn:aws:iam::(\d{12}):(root|user/.+|role/.+)$`)
)

// checkSetting applies the per-setting value rules.
func checkSetting(name ecstypes.SettingName, value string) error {
	rule, ok := accountSetting[name]
	if !ok {
		return invalidParam("Unknown account setting %q.", name)
	}
	if !slices.Contains(rule.values, value) {
		return invalidParam("Invalid value %q for account setting %s: valid values are %s.", value, name, strings.Join(rule.values, ", "))
	}
	if slices.Contains(longARNSettings, name) && value != "enabled" {
		// ECS's own wording: Terraform treats this message as success when it
		// destroys a long-ARN account setting.
		return invalidParam("You can no longer disable Long Arn settings")
	}
	if name == ecstypes.SettingNameGuardDutyActivate {
		return invalidParam("guardDutyActivate is read-only: Amazon GuardDuty controls this account setting.")
	}
	return nil
}

// principal resolves an optional principalArn to the ARN settings are kept
// under: the caller when omitted.
func (s *Service) principal(ctx context.Context, arn string) (string, error) {
	if arn == "" {
		return s.caller(ctx), nil
	}
	m := principalRE.FindStringSubmatch(arn)
	if m == nil {
		return "", invalidParam("principalArn %q is not the ARN of an IAM user, role or root user.", arn)
	}
	if m[1] != s.arns.Account {
		return "", invalidParam("principalArn %q belongs to another account than %s.", arn, s.arns.Account)
	}
	return arn, nil
}

// effectiveSetting is a setting's value for principal: its own, else the
// account default (the root user's), else AWS's default.
func (s *Service) effectiveSetting(tx store.ReadTx, principal string, name ecstypes.SettingName) (string, error) {
	set, err := s.effective(tx, principal, name)
	if err != nil {
		return "", err
	}
	return set.Value, nil
}

func (s *Service) effective(tx store.ReadTx, principal string, name ecstypes.SettingName) (ecstypes.Setting, error) {
	for _, p := range []string{principal, s.arns.Root()} {
		set, ok, err := state.Get[state.Setting](tx, state.SettingKey(p, string(name)))
		if err != nil {
			return ecstypes.Setting{}, err
		}
		if ok {
			return *set, nil
		}
	}
	return ecstypes.Setting{Name: name, Value: accountSetting[name].def, PrincipalArn: s.arns.Root(), Type: ecstypes.SettingTypeAwsManaged}, nil
}

func (s *Service) putSetting(ctx context.Context, principal string, name ecstypes.SettingName, value string) (*ecstypes.Setting, error) {
	if err := checkSetting(name, value); err != nil {
		return nil, err
	}
	set := &ecstypes.Setting{Name: name, Value: value, PrincipalArn: principal, Type: ecstypes.SettingTypeUser}
	_, err := s.store.Update(ctx, func(tx store.Tx) error {
		return state.Put(tx, state.SettingKey(principal, string(name)), set)
	})
	if err != nil {
		return nil, err
	}
	return set, nil
}

// PutAccountSetting sets a setting for one principal (the caller by default).
func (s *Service) PutAccountSetting(ctx context.Context, in *ecstypes.PutAccountSettingRequest) (*ecstypes.PutAccountSettingResponse, error) {
	principal, err := s.principal(ctx, in.PrincipalArn)
	if err != nil {
		return nil, err
	}
	if in.Name == ecstypes.SettingNameFargateTaskRetirementWaitPeriod && principal != s.arns.Root() {
		return nil, invalidParam("fargateTaskRetirementWaitPeriod can only be set for the root user.")
	}
	set, err := s.putSetting(ctx, principal, in.Name, in.Value)
	if err != nil {
		return nil, err
	}
	return &ecstypes.PutAccountSettingResponse{Setting: set}, nil
}

// PutAccountSettingDefault sets the account-wide default (the root user's
// setting), which principals without their own setting inherit.
func (s *Service) PutAccountSettingDefault(ctx context.Context, in *ecstypes.PutAccountSettingDefaultRequest) (*ecstypes.PutAccountSettingDefaultResponse, error) {
	set, err := s.putSetting(ctx, s.arns.Root(), in.Name, in.Value)
	if err != nil {
		return nil, err
	}
	return &ecstypes.PutAccountSettingDefaultResponse{Setting: set}, nil
}

// DeleteAccountSetting removes a principal's own setting, so it inherits the
// account default again. It answers the setting as it was.
func (s *Service) DeleteAccountSetting(ctx context.Context, in *ecstypes.DeleteAccountSettingRequest) (*ecstypes.DeleteAccountSettingResponse, error) {
	principal, err := s.principal(ctx, in.PrincipalArn)
	if err != nil {
		return nil, err
	}
	if _, ok := accountSetting[in.Name]; !ok {
		return nil, invalidParam("Unknown account setting %q.", in.Name)
	}
	var deleted *ecstypes.Setting
	_, err = s.store.Update(ctx, func(tx store.Tx) error {
		key := state.SettingKey(principal, string(in.Name))
		set, ok, err := state.Get[state.Setting](tx, key)
		if err != nil {
			return err
		}
		if !ok {
			return invalidParam("No %s setting is set for %s.", in.Name, principal)
		}
		deleted = set
		return tx.Delete(key)
	})
	if err != nil {
		return nil, err
	}
	return &ecstypes.DeleteAccountSettingResponse{Setting: deleted}, nil
}

// ListAccountSettings lists a principal's own settings, or with
// effectiveSettings the value in force for every setting.
func (s *Service) ListAccountSettings(ctx context.Context, in *ecstypes.ListAccountSettingsRequest) (*ecstypes.ListAccountSettingsResponse, error) {
	if in.Value != "" && in.Name == "" {
		return nil, invalidParam("value can only be used together with name.")
	}
	principal, err := s.principal(ctx, in.PrincipalArn)
	if err != nil {
		return nil, err
	}
	var maxResults *int32
	if in.MaxResults != 0 {
		maxResults = &in.MaxResults
	}
	p, err := newPage(maxResults, in.NextToken, 10)
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(accountSetting))
	for n := range accountSetting {
		if in.Name == "" || n == in.Name {
			names = append(names, string(n))
		}
	}
	slices.Sort(names)
	out := &ecstypes.ListAccountSettingsResponse{}
	err = s.store.View(ctx, func(tx store.ReadTx) error {
		for i, n := range names {
			if p.After != "" && n <= p.After {
				continue
			}
			var set ecstypes.Setting
			if in.EffectiveSettings {
				if set, err = s.effective(tx, principal, ecstypes.SettingName(n)); err != nil {
					return err
				}
			} else {
				own, ok, err := state.Get[state.Setting](tx, state.SettingKey(principal, n))
				if err != nil {
					return err
				}
				if !ok {
					continue
				}
				set = *own
			}
			if in.Value != "" && set.Value != in.Value {
				continue
			}
			out.Settings = append(out.Settings, set)
			if len(out.Settings) == p.Limit {
				if i < len(names)-1 {
					out.NextToken = paging.Token(n)
				}
				return nil
			}
		}
		return nil
	})
	return out, err
}
