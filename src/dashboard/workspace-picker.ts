/**
 * The admin's workspace picker in the top bar: every workspace by name (one made or renamed here included), the
 * empty choice for the fleet overview. A workspace key sees its own workspace only: no picker.
 */
import { $, el } from './dom.ts';

export interface WorkspacePicker {
  /** Every workspace, or null for a workspace key (the picker hides). */
  fill(workspaces: readonly { id: string; name: string }[] | null): void;
  /** A workspace made or renamed here. */
  list(workspace: { id: string; name: string }): void;
  select(workspaceId: string | null): void;
}

export function createWorkspacePicker(onChoose: (workspaceId: string | null) => void): WorkspacePicker {
  const picker = $<HTMLSelectElement>('workspace-picker');
  picker.addEventListener('change', () => onChoose(picker.value || null));
  return {
    fill(workspaces) {
      picker.replaceChildren();
      if (workspaces) picker.append(el('option', { value: '' }, 'Choose a workspace…'), ...workspaces.map((w) => el('option', { value: w.id }, w.name)));
      picker.hidden = workspaces === null || workspaces.length === 0;
    },
    list(workspace) {
      const option = [...picker.options].find((o) => o.value === workspace.id) ?? picker.appendChild(el('option', { value: workspace.id }));
      option.textContent = workspace.name;
      picker.hidden = false;
    },
    select(workspaceId) {
      picker.value = workspaceId ?? '';
    },
  };
}
