export type { Command, CommandIo } from "./command.js";
export { EXIT_USAGE } from "./command.js";
export { commands } from "./commands/index.js";
export { main, run, usage } from "./main.js";
export type {
  ControlPlane,
  ControlPlaneConfig,
  ControlPlaneEvent,
  ControlPlaneExtension,
  ControlPlaneOptions,
  ControlPlaneParts,
  ExtensionHandle,
  ServedService,
} from "./serve/control-plane.js";
