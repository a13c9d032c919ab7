import { Command, type ErrorOptions, type Option } from 'commander';

/**
 * A dconnect command: commander's `Command` with its refusals declared. `refuses(other, hints)` says
 * that each option named in `hints` cannot be given together with `other` (commander's
 * `Option.conflicts`, checked before the action runs) and what to do instead; commander's message
 * ("option '--fault <spec>' cannot be used with option '--live'") then carries that hint on the next
 * line, as a DconnectError's message does. Checks that depend on values, not on which flags were
 * given, stay in the command's own validator.
 */
export class CliCommand extends Command {
  /** `option other` (attribute names) -> what to do; in declaration order. */
  private readonly hints = new Map<string, string>();

  /** Each option in `hints` (by attribute name, `hostLanes` for --host-lanes) is refused with `other`. */
  refuses(other: string, hints: Record<string, string>): this {
    this.optionNamed(other);
    for (const [name, hint] of Object.entries(hints)) {
      this.optionNamed(name).conflicts(other);
      this.hints.set(`${name} ${other}`, hint);
    }
    return this;
  }

  override error(message: string, options?: ErrorOptions): never {
    const hint = options?.code === 'commander.conflictingOption' ? this.conflictHint() : undefined;
    return super.error(hint === undefined ? message : `${message}\n  hint: ${hint}`, options);
  }

  /** The hint of the conflict commander reports: its first given option (in the command's order) with a declared conflict that is given too. */
  private conflictHint(): string | undefined {
    const given = this.options.filter((o) => {
      const k = o.attributeName();
      return this.getOptionValue(k) !== undefined && this.getOptionValueSource(k) !== 'default';
    });
    for (const o of given) {
      const other = given.find((d) => this.hints.has(`${o.attributeName()} ${d.attributeName()}`));
      if (other) return this.hints.get(`${o.attributeName()} ${other.attributeName()}`);
    }
    return undefined;
  }

  private optionNamed(name: string): Option {
    const o = this.options.find((x) => x.attributeName() === name);
    if (!o) throw new Error(`${this.name()} has no option ${name}: declare its options before their conflicts`);
    return o;
  }
}
