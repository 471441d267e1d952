// A deliberate type error: tsc must refuse this file (see ./tsconfig.json).
// .ci/external-checks counts the markers below and requires exactly that many
// errors in this file, so that the check fails for the right reason only.
import type { paths } from "../generated/schema";

type LoginBody =
  paths["/_allauth/{client}/v1/auth/login"]["post"]["requestBody"]["content"]["application/json"];

// The login body has no `passwd` field, and `password` is required.
// @ts-expect-failure: object literal may only specify known properties
export const wrong: LoginBody = { email: "alice@example.org", passwd: "correct horse" };
